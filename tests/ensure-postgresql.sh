#!/bin/sh
# Make sure PostgreSQL's server binaries exist for the PostgreSQL history tests.
# Present: do nothing. Missing and root: install Debian's postgresql package.
# Missing and not root: fail saying what to install (the tests would fail too; nothing is skipped).
set -eu

if ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure-postgresql: installing Debian's postgresql package" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends postgresql
    exit 0
fi
echo "ensure-postgresql: PostgreSQL server binaries are missing; install them (e.g. 'sudo apt-get install postgresql')" >&2
exit 1
