#!/bin/sh
# Installs the Debian 12 packages Parley builds, runs and tests with.
# Idempotent: does nothing when everything is there already.
set -eu
PACKAGES="build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev lld
libuv1-dev libexpat1-dev libssl-dev libsqlite3-dev libyaml-cpp-dev libspdlog-dev libfmt-dev
libidn-dev libcli11-dev doctest-dev libgloox-dev openssl
libhttp-parser-dev libwslay-dev chromium-headless-shell
python3-slixmpp python3-pytest python3-yaml python3-websocket go-sendxmpp
systemd dpkg-dev
postgresql libpq-dev
python3-aiohttp python3-prometheus-client
libcurl4-openssl-dev"
missing=""
for p in $PACKAGES; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
# Node runs the web client libraries of the WebSocket tests (@xmpp/client,
# installed from npm into a cache by tools/install-node-clients.sh). A node
# from elsewhere (NodeSource ships npm inside nodejs) is kept as it is.
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -z "$missing" ] && exit 0
echo "installing:$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
