#!/usr/bin/env bash
# System packages the test suite needs, from Debian's archive: the PostgreSQL server (state
# tests) and Chromium (the web UI's browser tests, driven by Playwright, which must not
# download a browser of its own). Installs only what is missing; without root or apt-get it
# says what is missing and the tests that need it are skipped with that reason.
set -euo pipefail

missing=()
compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" > /dev/null || missing+=(postgresql)
[ -x /usr/bin/chromium ] || missing+=(chromium)

[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get > /dev/null; then
    echo "system-deps: missing ${missing[*]} (install them with apt-get as root); dependent tests will be skipped" >&2
    exit 0
fi
echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
