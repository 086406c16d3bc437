#!/bin/sh
# Installs the npm packages of tests/integration/node/package.json (web
# client libraries: @xmpp/client, StanzaJS) into a cache directory, once: later calls
# find them there and return at once. Usage: install-node-clients.sh DIR
# Needs node and npm (tools/install-deps.sh) and the npm registry.
set -eu
dir=$1
src=$(cd "$(dirname "$0")/../tests/integration/node" && pwd)
mkdir -p "$dir"
if [ -f "$dir/package.json" ] && cmp -s "$src/package.json" "$dir/package.json" &&
   [ -f "$dir/node_modules/@xmpp/client/package.json" ] && [ -f "$dir/node_modules/stanza/package.json" ] &&
   [ -f "$dir/node_modules/ws/package.json" ]; then
  exit 0
fi
cp "$src/package.json" "$dir/package.json"
cd "$dir"
npm install --no-audit --no-fund --no-package-lock --loglevel=error >&2
