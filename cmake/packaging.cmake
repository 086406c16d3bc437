# packaging.cmake - what `cmake --install` adds for an operator (parleyctl, the default
# configuration, the systemd unit, the docs) and the Debian package (`cpack -G DEB`).
# Included once from the top-level CMakeLists.txt, after the targets exist.
#
# The configuration and the unit are written at install time, not configure time, so
# that `cmake --install build --prefix DIR` and the package (prefix /usr) each get their
# own paths: packaging/install_files.cmake rewrites conf/parley.yml (the one hand-kept
# configuration) and fills in packaging/parley.service.in.
include_guard(GLOBAL)

install(TARGETS parleyctl RUNTIME DESTINATION bin)

install(CODE "
  set(PARLEY_SOURCE_DIR \"${PROJECT_SOURCE_DIR}\")
  set(PARLEY_BINARY_DIR \"${PROJECT_BINARY_DIR}\")
  include(\"${PROJECT_SOURCE_DIR}/packaging/install_files.cmake\")
")

install(FILES README.md DESTINATION share/doc/parley)
install(DIRECTORY docs/ DESTINATION share/doc/parley/docs FILES_MATCHING PATTERN "*.md")

# The Debian package: one package holding the server, the admin tool, the modules and
# the SDK. CPACK_SET_DESTDIR: the install runs with prefix /usr and DESTDIR set to the
# staging tree, so that install_files.cmake sees /usr and puts the configuration in
# /etc and the data in /var (as GNUInstallDirs does for /usr).
set(CPACK_PACKAGE_NAME parley)
set(CPACK_PACKAGE_VENDOR "Parley")
set(CPACK_PACKAGE_CONTACT "Parley maintainers <parley@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "XMPP server built to be small per connection and fast on every core")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_GENERATOR DEB)
set(CPACK_SET_DESTDIR ON)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://parley.invalid/")
# The shared libraries' packages (libuv1, libssl3, libsqlite3-0, libyaml-cpp0.7, ...),
# found by dpkg-shlibdeps from what parleyd, parleyctl and the modules link; passwd
# for useradd in postinst (Priority: required, named for clarity).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "passwd")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "systemd")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  "${PROJECT_SOURCE_DIR}/packaging/debian/conffiles"
  "${PROJECT_SOURCE_DIR}/packaging/debian/postinst"
  "${PROJECT_SOURCE_DIR}/packaging/debian/prerm"
  "${PROJECT_SOURCE_DIR}/packaging/debian/postrm")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
