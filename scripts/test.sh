#!/usr/bin/env bash
# The test command: install, lint, format check, then the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# pytest exits 5 when it collects no test: that must fail, not pass silently
.venv/bin/python -m pytest -q -p no:cacheprovider "$@" || { rc=$?; [ $rc -eq 5 ] && echo "no tests ran"; exit $rc; }
