#!/bin/sh
# The third-party path of docs/plugins.md, end to end:
#   cmake --install the Parley build into a temp prefix, then configure and
#   build the out-of-tree project (mod_hello) against that prefix alone, and
#   check the module exports exactly one symbol, parley_module_entry.
# usage: out_of_tree_test.sh BUILD_DIR PROJECT_DIR [KEEP_DIR]
#   KEEP_DIR: copy the built mod_hello.so there (for a test that loads it).
#   PARLEY_INSTALL_COMPONENT=sdk in the environment installs only the SDK
#   (for a build where parleyd itself was not built).
set -eu
build=${1:?usage: out_of_tree_test.sh BUILD_DIR PROJECT_DIR [KEEP_DIR]}
project=${2:?usage: out_of_tree_test.sh BUILD_DIR PROJECT_DIR [KEEP_DIR]}
keep=${3:-}

fail() { echo "out_of_tree_test: $*" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/parley-oot.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
prefix=$tmp/prefix

cmake --install "$build" --prefix "$prefix" ${PARLEY_INSTALL_COMPONENT:+--component "$PARLEY_INSTALL_COMPONENT"} \
  >"$tmp/install.log" 2>&1 \
  || { cat "$tmp/install.log" >&2; fail "cmake --install failed"; }
[ -f "$prefix/include/parley/module.h" ] || fail "module.h not installed"
[ -f "$prefix/include/parley/module.hpp" ] || fail "module.hpp not installed"
config=$(find "$prefix" -name ParleyConfig.cmake | head -n 1)
[ -n "$config" ] || fail "ParleyConfig.cmake not installed"
for f in ParleyConfigVersion.cmake ParleyModule.cmake ParleyTargets.cmake; do
  [ -f "$(dirname "$config")/$f" ] || fail "$f not installed next to ParleyConfig.cmake"
done

# The same compiler as the Parley build; nothing from the source tree or the
# user's package registry, only the prefix.
cxx=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")
src_dir=$(sed -n 's/^parley_SOURCE_DIR:[A-Z]*=//p' "$build/CMakeCache.txt")
cmake -S "$project" -B "$tmp/build" -DCMAKE_BUILD_TYPE=Release \
  ${cxx:+-DCMAKE_CXX_COMPILER="$cxx"} \
  -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF \
  -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >"$tmp/configure.log" 2>&1 \
  || { cat "$tmp/configure.log" >&2; fail "configure of $project failed"; }
cmake --build "$tmp/build" >"$tmp/build.log" 2>&1 \
  || { cat "$tmp/build.log" >&2; fail "build of $project failed"; }

so=$tmp/build/mod_hello.so
[ -f "$so" ] || fail "mod_hello.so not built (looked for $so)"

# Built against the installed headers, not the source tree's.
grep -q -- "$prefix/include" "$tmp/build/compile_commands.json" || fail "the prefix's include dir is not used"
if [ -n "$src_dir" ] && grep -q -- "$src_dir/include" "$tmp/build/compile_commands.json"; then
  fail "built against the source tree's headers"
fi

exported=$(nm -D --defined-only "$so" | awk '{print $NF}' | sort | tr '\n' ' ')
[ "$exported" = "parley_module_entry " ] || fail "mod_hello.so must export only parley_module_entry, exports: $exported"

# The definition is readable through the entry symbol: name and ABI major.
if [ -x /usr/bin/python3 ]; then
  major=$(sed -n 's/^#define PARLEY_ABI_MAJOR \([0-9]*\).*/\1/p' "$prefix/include/parley/module.h")
  /usr/bin/python3 - "$so" "$major" <<'PY' || fail "mod_hello.so's definition is wrong"
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
class Def(ctypes.Structure):
    _fields_ = [("size", ctypes.c_size_t), ("abi_major", ctypes.c_uint32), ("abi_minor", ctypes.c_uint32),
                ("name", ctypes.c_char_p), ("version", ctypes.c_char_p)]
lib.parley_module_entry.restype = ctypes.POINTER(Def)
d = lib.parley_module_entry().contents
assert d.name == b"mod_hello", d.name
assert d.abi_major == int(sys.argv[2]), d.abi_major
print("mod_hello", d.version.decode(), "ABI", d.abi_major, d.abi_minor, "def size", d.size)
PY
fi

if [ -n "$keep" ]; then
  mkdir -p "$keep"
  cp "$so" "$keep/mod_hello.so"
fi
echo "out_of_tree_test: ok ($so exports only parley_module_entry)"
