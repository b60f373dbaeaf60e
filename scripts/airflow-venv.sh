#!/usr/bin/env bash
# A real Apache Airflow in its own virtual environment (.venv-airflow/, ignored by git), for
# the test that loads the DAG file `daglake export airflow` writes. Airflow's dependencies
# clash with daglake's, so it never shares .venv. Installed once from the pinned list
# scripts/airflow-requirements.lock (Airflow's own constraints files are not reachable from
# CI, only PyPI is) and reused while that list is unchanged. Prints the venv's python.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
exec bash "$root/scripts/venv-from-lock.sh" "${AIRFLOW_VENV:-$root/.venv-airflow}" "$root/scripts/airflow-requirements.lock"
