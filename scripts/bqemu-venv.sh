#!/usr/bin/env bash
# The BigQuery emulator (bqemulator) in its own virtual environment (.venv-bqemu/, ignored by git),
# for the tests of the bigquery engine (tests/bigquery_emulator.py starts it). Its pins
# clash with daglake's, so it never shares .venv. Installed once from the pinned list
# scripts/bqemu-requirements.lock and reused while that list is unchanged. Prints the venv's python.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${BQEMU_VENV:-$root/.venv-bqemu}"
lock="$root/scripts/bqemu-requirements.lock"
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
