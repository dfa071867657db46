#!/bin/sh
# Installs what BitLens needs from Debian packages (as root), or says exactly what is missing.
set -eu
PKGS="cmake ninja-build g++ emscripten libsimde-dev doctest-dev libstb-dev nlohmann-json3-dev dataset-fashion-mnist chromium clang-14 libclang-rt-14-dev clang-19 lld-19"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = "0" ]; then
    echo "setup: installing$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
  else
    echo "setup: missing Debian packages:$missing" >&2
    echo "setup: run as root: apt-get install$missing" >&2
    exit 1
  fi
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
