#!/usr/bin/env bash
# Installs Debian's chromium for the real-browser test of the HTML report (tests/test_report_browser.py),
# when no `chromium` is on PATH yet. Idempotent and quiet: a second run does nothing. Needs root or sudo.
# Playwright for Python drives it (the `test` extra installs playwright; it never downloads its own browsers).
exec bash "$(dirname "$0")/apt_install.sh" install_browser.sh "command -v chromium" chromium
