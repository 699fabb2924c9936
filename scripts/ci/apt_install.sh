#!/usr/bin/env bash
# apt_install.sh NAME CHECK PACKAGE: install Debian's PACKAGE (quietly, without recommends) unless the shell
# command CHECK already succeeds; fail if CHECK still fails afterwards. Needs root or sudo. NAME labels messages.
set -euo pipefail
name=$1 check=$2 package=$3
if bash -c "$check" >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "$name: $package is missing and this user is not root (no sudo): install $package" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "$package" >/dev/null
bash -c "$check" >/dev/null 2>&1 || { echo "$name: still missing after apt-get install $package" >&2; exit 1; }
echo "$name: installed $package"
