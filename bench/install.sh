#!/bin/sh
# Installs the tools and sources the benchmarks use (Debian packages only).
# Called by the harness when something is missing; safe to run again.
set -eu
packages="binutils-source bubblewrap strace xz-utils make gcc libc6-dev ccache redis-server redis-tools postgresql-15 postgresql-client-15"
missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "bench/install.sh: need root to install:$missing" >&2; exit 1
  fi
else SUDO=""; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
