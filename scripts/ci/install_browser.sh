#!/usr/bin/env bash
# Installs Debian's chromium for the real-browser test of the HTML report (tests/test_report_browser.py),
# when no `chromium` is on PATH yet. Idempotent and quiet: a second run does nothing. Needs root or sudo.
# Playwright for Python drives it (the `test` extra installs playwright; it never downloads its own browsers).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "install_browser.sh: chromium is missing and this user is not root (no sudo): install chromium" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium >/dev/null 2>&1 || { echo "install_browser.sh: chromium still not on PATH after apt-get" >&2; exit 1; }
echo "install_browser.sh: installed $(chromium --version 2>/dev/null || echo chromium)"
