#!/usr/bin/env bash
# System packages the test suite needs, from Debian's archive: the PostgreSQL server (state
# tests), Chromium (the web UI's browser tests, driven by Playwright, which must not download a
# browser of its own) and a Java 17 runtime (the spark engine: pyspark 4.3 needs Java 17 or 21;
# Debian here has no 21). Installs only what is missing; without root or apt-get it says what
# is missing and the tests that need it are skipped with that reason (in CI they fail).
set -euo pipefail

java_major() {
    local java="${JAVA_HOME:+$JAVA_HOME/bin/}java"
    command -v "$java" > /dev/null || { echo 0; return; }
    "$java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\)\(\.\([0-9]*\)\)\{0,1\}.*/\1 \3/p' | head -n1 |
        awk '{ print ($1 == 1 ? $2 : $1) + 0 }'
}

missing=()
compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" > /dev/null || missing+=(postgresql)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ "$(java_major)" -ge 17 ] || missing+=(openjdk-17-jre-headless)

[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get > /dev/null; then
    echo "system-deps: missing ${missing[*]} (install them with apt-get as root); dependent tests will be skipped" >&2
    exit 0
fi
echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
