#!/usr/bin/env bash
# The project's test command (README and .ci/run call exactly this):
#   lint (ruff), format check, type check (mypy on src/), then the whole pytest suite, whose
#   database tests run once on SQLite and once on PostgreSQL (KMG_TEST_POSTGRES_URL).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
# install.sh --dev writes the test database's URL here; an exported value wins
if [ -z "${KMG_TEST_POSTGRES_URL:-}" ] && [ -f .env.test ]; then
  set -a; . ./.env.test; set +a
fi
echo "== ruff check";  "$PY" -m ruff check src tests benchmarks main.py
echo "== ruff format"; "$PY" -m ruff format --check src tests benchmarks main.py
echo "== mypy";        "$PY" -m mypy src
echo "== pytest";      "$PY" -m pytest -q "$@"
