#!/bin/sh
# The include-root fences of xml/, storage/ and http/ (ARCHITECTURE.md, dependency
# direction): compiled with only its own include root and the SDK, each library
# must reach its own headers and must NOT reach core/ (or the other library).
# Usage: check_fences.sh CXX SOURCE_DIR BUILD_DIR
cxx=$1 src=$2 build=$3
fail=0
try() {  # include-root, header -> 0 if it compiles
  printf '#include "%s"\n' "$2" | "$cxx" -std=c++20 -fsyntax-only -I "$1" -I "$src/include" -x c++ - 2>/dev/null
}
for lib in xml storage http; do
  root=$build/$lib/include_root
  case $lib in
    xml) own=xml/element.hpp ;;
    storage) own=storage/database.hpp ;;
    http) own=http/server_conn.hpp ;;
  esac
  if ! try "$root" "$own"; then echo "fence: $lib/ cannot reach its own $own through $root"; fail=1; fi
  for other in core/server/server.hpp core/router/router.hpp; do
    if try "$root" "$other"; then echo "fence: $lib/ can include $other"; fail=1; fi
  done
done
if try "$build/xml/include_root" storage/database.hpp; then echo "fence: xml/ can include storage/"; fail=1; fi
if try "$build/storage/include_root" xml/element.hpp; then echo "fence: storage/ can include xml/"; fail=1; fi
if try "$build/http/include_root" xml/element.hpp; then echo "fence: http/ can include xml/"; fail=1; fi
[ $fail -eq 0 ] && echo "fences ok"
exit $fail
