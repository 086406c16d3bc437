#!/bin/sh
# Installs the Debian 12 packages Parley builds, runs and tests with.
# Idempotent: does nothing when everything is there already.
set -eu
PACKAGES="build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev lld
libuv1-dev libexpat1-dev libssl-dev libsqlite3-dev libyaml-cpp-dev libspdlog-dev libfmt-dev
libidn-dev libcli11-dev doctest-dev libgloox-dev openssl
python3-slixmpp python3-pytest python3-yaml go-sendxmpp"
missing=""
for p in $PACKAGES; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
