# ParleyModule.cmake - parley_add_module(): build a Parley module (.so).
#
#   parley_add_module(<name> <source>... [OUTPUT_DIRECTORY <dir>] [OUTPUT_NAME <file name>])
#
# Builds <name>.so (no "lib" prefix: the loader looks for <module name>.so in
# module_paths) against the SDK headers only: target parley_sdk inside the Parley
# tree, Parley::sdk after find_package(Parley). Inside the tree the .so goes to
# ${CMAKE_BINARY_DIR}/modules/ unless OUTPUT_DIRECTORY says otherwise.
#
# Why the flags: a module exports exactly one symbol (parley_module_entry), so
# that two modules (or two versions of one during a reload) never bind to each
# other's inline functions or template instances; -fno-gnu-unique keeps GCC from
# emitting STB_GNU_UNIQUE symbols, which make dlclose() a no-op and would keep
# the old code mapped after a reload.
include_guard(GLOBAL)

function(parley_add_module name)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "" "OUTPUT_DIRECTORY;OUTPUT_NAME" "")
  set(sources ${ARG_UNPARSED_ARGUMENTS})
  if(NOT sources)
    message(FATAL_ERROR "parley_add_module(${name}): no source files")
  endif()

  # Written here, not at include time: include_guard(GLOBAL) would leave a
  # sibling directory that calls find_package(Parley) again without the variable.
  set(map "${CMAKE_BINARY_DIR}/parley_module.map")
  file(CONFIGURE OUTPUT "${map}" CONTENT "{\n  global: parley_module_entry;\n  local: *;\n};\n")

  # MODULE, not SHARED: a plugin is only ever dlopen()ed, never linked against.
  add_library(${name} MODULE ${sources})

  if(TARGET parley_sdk)
    target_link_libraries(${name} PRIVATE parley_sdk)
    set(default_dir "${CMAKE_BINARY_DIR}/modules")
  elseif(TARGET Parley::sdk)
    target_link_libraries(${name} PRIVATE Parley::sdk)
    set(default_dir "")
  else()
    message(FATAL_ERROR "parley_add_module(${name}): no Parley SDK target; call find_package(Parley) first")
  endif()

  set_target_properties(${name} PROPERTIES
    PREFIX ""
    SUFFIX ".so"
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    POSITION_INDEPENDENT_CODE ON
    LINK_DEPENDS "${map}")
  get_target_property(cxx_standard ${name} CXX_STANDARD)
  if(NOT cxx_standard OR cxx_standard LESS 20)
    set_target_properties(${name} PROPERTIES CXX_STANDARD 20 CXX_STANDARD_REQUIRED ON)
  endif()
  if(ARG_OUTPUT_DIRECTORY)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${ARG_OUTPUT_DIRECTORY}")
  elseif(default_dir)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${default_dir}")
  endif()
  if(ARG_OUTPUT_NAME)
    set_target_properties(${name} PROPERTIES OUTPUT_NAME "${ARG_OUTPUT_NAME}")
  endif()

  target_compile_options(${name} PRIVATE
    $<$<COMPILE_LANG_AND_ID:CXX,GNU>:-fno-gnu-unique>
    $<$<COMPILE_LANG_AND_ID:C,GNU>:-fno-gnu-unique>)
  target_link_options(${name} PRIVATE "LINKER:--version-script=${map}")

  # A module reaches the server only through the host table: an undefined
  # symbol means it called into parleyd directly, which must fail at build time.
  # Sanitizer runtimes are resolved by the executable, so skip the check then.
  string(FIND "${CMAKE_CXX_FLAGS} ${CMAKE_C_FLAGS} ${CMAKE_SHARED_LINKER_FLAGS} ${CMAKE_MODULE_LINKER_FLAGS}"
    "-fsanitize" sanitized)
  if(sanitized EQUAL -1 AND NOT PARLEY_SANITIZE AND NOT PARLEY_TSAN AND NOT PARLEY_FUZZ)
    target_link_options(${name} PRIVATE "LINKER:--no-undefined")
  endif()
endfunction()
