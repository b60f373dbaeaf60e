#!/usr/bin/env bash
# A tool's own virtual environment built from its pinned lock file, for tools whose
# dependencies clash with daglake's (Apache Airflow, the BigQuery emulator): never .venv.
# Installed once and reused while the lock file is unchanged. Prints the venv's python.
#   usage: scripts/venv-from-lock.sh VENV_DIR LOCK_FILE
set -euo pipefail

venv="$1"
lock="$2"
stamp="$venv/.installed"
python="${PYTHON:-python3}"

if [ -f "$stamp" ] && cmp -s "$stamp" "$lock"; then
    echo "$venv/bin/python"
    exit 0
fi
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$lock" >&2
cp "$lock" "$stamp"
echo "$venv/bin/python"
