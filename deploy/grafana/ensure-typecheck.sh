#!/bin/sh
# Make sure deploy/grafana/typecheck/node_modules holds Grafana's dashboard types and TypeScript
# (pinned in package.json) for tests/test_dashboard_types.py. Present: do nothing. npm missing and
# root: install Debian's nodejs and npm. Otherwise fail with a message saying what to install.
set -eu
here=$(cd "$(dirname "$0")/typecheck" && pwd)

if [ -x "$here/node_modules/.bin/tsc" ] && [ -d "$here/node_modules/@grafana/schema" ]; then
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "ensure-typecheck: installing Debian's nodejs and npm" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update
        apt-get install -y --no-install-recommends nodejs npm
    else
        echo "ensure-typecheck: npm is not on PATH and cannot be installed here (not root, or no" >&2
        echo "  apt-get). Install Node.js and npm, then run: npm install --prefix $here" >&2
        exit 1
    fi
fi
echo "ensure-typecheck: installing @grafana/schema and typescript into $here/node_modules" >&2
# Exact versions are pinned in package.json; no lock file is kept (it would only repeat them).
npm install --prefix "$here" --no-package-lock --no-audit --no-fund --silent
