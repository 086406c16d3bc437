#!/bin/sh
# First command of the README: install, build, start parleyd on conf/parley.yml.
#   tools/setup.sh            install + build + run the server in the foreground
#   tools/setup.sh --no-start install + build only
set -eu
cd "$(dirname "$0")/.."
tools/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build
if [ "${1:-}" = "--no-start" ]; then
  exit 0
fi
echo "starting parleyd (conf/parley.yml); register a user with:"
echo "  build/tools/parleyctl/parleyctl register alice localhost secret"
exec build/core/parleyd --config conf/parley.yml
