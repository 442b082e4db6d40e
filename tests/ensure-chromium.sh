#!/bin/sh
# Make sure a headless Chromium exists for the page's real-browser test (tests/test_page_browser_e2e.py).
# Present: do nothing. Missing and root: install Debian's chromium package.
# Missing and not root: fail saying what to install (the test would fail too; nothing is skipped).
set -eu

if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure-chromium: installing Debian's chromium package" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends chromium
    exit 0
fi
echo "ensure-chromium: Chromium is missing; install it (e.g. 'sudo apt-get install chromium')" >&2
exit 1
