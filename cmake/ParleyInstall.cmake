# ParleyInstall.cmake - install rules of the module SDK (component "sdk"), so
# that an out-of-tree project can find_package(Parley) and parley_add_module().
# Included once from the top-level CMakeLists.txt, after parley_sdk exists.
include_guard(GLOBAL)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(_parley_root "${CMAKE_CURRENT_LIST_DIR}/..")
set(PARLEY_CMAKE_INSTALL_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/Parley" CACHE STRING
  "Where ParleyConfig.cmake is installed, relative to the prefix")

# The ABI version, read from the header so that there is one source of truth.
file(STRINGS "${_parley_root}/include/parley/module.h" _parley_abi REGEX "^#define PARLEY_ABI_(MAJOR|MINOR) ")
string(REGEX REPLACE ".*PARLEY_ABI_MAJOR ([0-9]+).*" "\\1" PARLEY_ABI_MAJOR "${_parley_abi}")
string(REGEX REPLACE ".*PARLEY_ABI_MINOR ([0-9]+).*" "\\1" PARLEY_ABI_MINOR "${_parley_abi}")

set_target_properties(parley_sdk PROPERTIES EXPORT_NAME sdk)
install(TARGETS parley_sdk EXPORT ParleyTargets COMPONENT sdk)
install(DIRECTORY "${_parley_root}/include/parley" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}" COMPONENT sdk
  FILES_MATCHING PATTERN "*.h" PATTERN "*.hpp")
install(EXPORT ParleyTargets NAMESPACE Parley:: DESTINATION "${PARLEY_CMAKE_INSTALL_DIR}" COMPONENT sdk)

configure_package_config_file("${_parley_root}/cmake/ParleyConfig.cmake.in"
  "${CMAKE_BINARY_DIR}/cmake/ParleyConfig.cmake"
  INSTALL_DESTINATION "${PARLEY_CMAKE_INSTALL_DIR}")
write_basic_package_version_file("${CMAKE_BINARY_DIR}/cmake/ParleyConfigVersion.cmake"
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES
  "${CMAKE_BINARY_DIR}/cmake/ParleyConfig.cmake"
  "${CMAKE_BINARY_DIR}/cmake/ParleyConfigVersion.cmake"
  "${_parley_root}/cmake/ParleyModule.cmake"
  DESTINATION "${PARLEY_CMAKE_INSTALL_DIR}" COMPONENT sdk)
