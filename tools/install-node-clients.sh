#!/bin/sh
# Installs the npm packages of a package.json of tests/integration/node
# (web client libraries: @xmpp/client and StanzaJS; with `browser`,
# Converse.js and puppeteer-core) into a cache directory, once: later calls
# find them there and return at once. Usage:
#   install-node-clients.sh DIR [browser]
# Needs node and npm (tools/install-deps.sh) and the npm registry.
set -eu
dir=$1
src=$(cd "$(dirname "$0")/../tests/integration/node" && pwd)
[ "${2:-}" = browser ] && src=$src/browser
mkdir -p "$dir"
# One install at a time per directory: ctest runs the WebSocket and BOSH
# suites side by side, and two npm installs into one node_modules break each
# other. The second waits here, then finds the first one's work done.
exec 9>"$dir.lock"
flock 9
if [ -f "$dir/.installed" ] && cmp -s "$src/package.json" "$dir/.installed"; then
  exit 0
fi
rm -f "$dir/.installed"
# A fresh install: npm 11 fails on a node_modules left by another package.json
# ("Cannot destructure property 'package' of 'node.target' as it is null").
rm -rf "$dir/node_modules"
cp "$src/package.json" "$dir/package.json"
cd "$dir"
npm install --no-audit --no-fund --no-package-lock --loglevel=error >&2
cp package.json .installed
