#!/usr/bin/env bash
# A real Apache Airflow in its own virtual environment (.venv-airflow/, ignored by git), for
# the test that loads the DAG file `daglake export airflow` writes. Airflow's dependencies
# clash with daglake's, so it never shares .venv. Installed once from the pinned list
# scripts/airflow-requirements.lock (Airflow's own constraints files are not reachable from
# CI, only PyPI is) and reused while that list is unchanged. Prints the venv's python.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${AIRFLOW_VENV:-$root/.venv-airflow}"
lock="$root/scripts/airflow-requirements.lock"
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
