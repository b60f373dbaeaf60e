#!/usr/bin/env bash
# The BigQuery emulator (bqemulator) in its own virtual environment (.venv-bqemu/, ignored by git),
# for the tests of the bigquery engine (tests/bigquery_emulator.py starts it). Its pins
# clash with daglake's, so it never shares .venv. Installed once from the pinned list
# scripts/bqemu-requirements.lock and reused while that list is unchanged. Prints the venv's python.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
exec bash "$root/scripts/venv-from-lock.sh" "${BQEMU_VENV:-$root/.venv-bqemu}" "$root/scripts/bqemu-requirements.lock"
