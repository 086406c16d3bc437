# install_files.cmake - run by `cmake --install` (and by cpack): writes the default
# configuration and the systemd unit for the prefix of this install.
#
# Input: PARLEY_SOURCE_DIR, PARLEY_BINARY_DIR (the build tree: files are staged there), and what cmake_install.cmake defines (CMAKE_INSTALL_PREFIX,
# the prefix of this install, and DESTDIR in the environment, which file(INSTALL)
# prepends by itself).
#
# Where things go, as GNUInstallDirs lays out a prefix: for /usr (the package) the
# configuration is /etc/parley/parley.yml and the data /var/lib/parley; for any other
# prefix P, P/etc/parley/parley.yml and P/var/lib/parley.
#
# The configuration is conf/parley.yml (the one hand-kept copy) with its relative paths
# made absolute for the prefix. Each rewrite must match exactly once: a change to
# conf/parley.yml that breaks one fails the install (and CI's tests/integration/
# test_install.py) instead of shipping a configuration with a path left relative.

set(_prefix "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "/+$" "" _prefix "${_prefix}")
if(_prefix STREQUAL "/usr" OR _prefix STREQUAL "")
  set(_etc "/etc")
  set(_var "/var")
  if(_prefix STREQUAL "")
    set(_prefix "/usr")
  endif()
else()
  set(_etc "${_prefix}/etc")
  set(_var "${_prefix}/var")
endif()
set(_conf_dir "${_etc}/parley")
set(_data_dir "${_var}/lib/parley")
set(_module_dir "${_prefix}/lib/parley/modules")
set(_bin_dir "${_prefix}/bin")

file(READ "${PARLEY_SOURCE_DIR}/conf/parley.yml" _conf)

# A path as a YAML single-quoted scalar: any prefix (spaces, '#', ': ') reads back as is.
function(_parley_yaml_quote out path)
  string(REPLACE "'" "''" _q "${path}")
  set(${out} "'${_q}'" PARENT_SCOPE)
endfunction()
_parley_yaml_quote(_q_data_dir "${_data_dir}")
_parley_yaml_quote(_q_db "${_data_dir}/parley.db")
_parley_yaml_quote(_q_socket "${_data_dir}/parley.sock")
_parley_yaml_quote(_q_module_dir "${_module_dir}")

function(_parley_rewrite from to)
  string(FIND "${_conf}" "${from}" _at)
  if(_at EQUAL -1)
    message(FATAL_ERROR "install: conf/parley.yml no longer holds the line to rewrite:\n  ${from}\n"
                        "(packaging/install_files.cmake must follow the change)")
  endif()
  string(REPLACE "${from}" "${to}" _new "${_conf}")
  set(_conf "${_new}" PARENT_SCOPE)
endfunction()

_parley_rewrite(
  "# Relative paths are relative to the directory parleyd is started from.\n"
  "# Installed for the prefix ${_prefix}: every path below is absolute (a relative path\n# would be relative to the directory parleyd is started from). Check it with\n#   ${_bin_dir}/parleyd --config ${_conf_dir}/parley.yml --check-config\n")
_parley_rewrite(
  "# Where the database, the control socket and generated certificates live.\ndata_dir: data\n"
  "# Where the database, the control socket, the SASL secret (sasl_secret) and the\n# generated certificates (certs/HOST.pem) live: writable by the server's user only\n# (the systemd unit's ReadWritePaths).\ndata_dir: ${_q_data_dir}\n")
_parley_rewrite(
  "  path: data/parley.db\n"
  "  path: ${_q_db}   # the message archive (mod_mam) is parley-archive.db beside it\n")
_parley_rewrite(
  "control_socket: data/parley.sock\n"
  "control_socket: ${_q_socket}   # parleyctl finds it through this file\n")
_parley_rewrite(
  "module_paths: []\n"
  "module_paths: [${_q_module_dir}]\n")

# The configuration: written only if none is there, so that an admin's edits survive a
# reinstall (the package's copy is a conffile: dpkg asks instead).
set(_conf_file "$ENV{DESTDIR}${_conf_dir}/parley.yml")
set(_staged "${PARLEY_BINARY_DIR}/parley-install/parley.yml")
file(WRITE "${_staged}" "${_conf}")
if(EXISTS "${_conf_file}")
  message(STATUS "Kept (exists): ${_conf_file}; the default is ${_conf_dir}/parley.yml.default")
  file(INSTALL "${_staged}" DESTINATION "${_conf_dir}" RENAME parley.yml.default)
else()
  file(INSTALL "${_staged}" DESTINATION "${_conf_dir}"
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
endif()

# The systemd unit.
set(PARLEY_BIN_DIR "${_bin_dir}")
set(PARLEY_DOC_DIR "${_prefix}/share/doc/parley")
set(PARLEY_CONF_FILE "${_conf_dir}/parley.yml")
set(PARLEY_DATA_DIR "${_data_dir}")
if(_data_dir STREQUAL "/var/lib/parley")
  # systemd creates /var/lib/parley owned by the service's user if postinst did not.
  set(PARLEY_STATE_DIRECTORY "StateDirectory=parley\nStateDirectoryMode=0750")
else()
  set(PARLEY_STATE_DIRECTORY "# (data outside /var/lib: no StateDirectory=; create ${_data_dir} for the user parley)")
endif()
configure_file("${PARLEY_SOURCE_DIR}/packaging/parley.service.in"
               "${PARLEY_BINARY_DIR}/parley-install/parley.service" @ONLY)
file(INSTALL "${PARLEY_BINARY_DIR}/parley-install/parley.service"
     DESTINATION "${_prefix}/lib/systemd/system"
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

# The data directory itself, empty: parleyd fills it at its first start (the package's
# postinst gives it to the user parley, mode 0750).
file(MAKE_DIRECTORY "$ENV{DESTDIR}${_data_dir}")
