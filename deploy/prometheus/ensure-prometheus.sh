#!/bin/sh
# Make sure `prometheus` and `promtool` are on PATH for the observability tests.
# Present: do nothing. Missing and root: install Debian's `prometheus` package.
# Missing and not root: fail with a message saying what to install.
set -eu

if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure-prometheus: installing Debian's prometheus package (provides prometheus and promtool)" >&2
    # The package's postinst may try to start a service; without an init system that is harmless.
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends prometheus
    if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
        exit 0
    fi
    echo "ensure-prometheus: apt-get installed 'prometheus' but promtool/prometheus are still not on PATH" >&2
    exit 1
fi

echo "ensure-prometheus: 'prometheus' and 'promtool' are not on PATH and cannot be installed here" >&2
echo "  (not root, or no apt-get). Install them, e.g. 'sudo apt-get install prometheus' on Debian," >&2
echo "  or put the release binaries from https://prometheus.io/download/ on PATH." >&2
exit 1
