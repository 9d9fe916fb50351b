#!/usr/bin/env bash
# Installs everything archsearch needs on a fresh machine: Debian's Fashion-MNIST package,
# a virtual environment in .venv, and archsearch with its pinned dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
FMNIST=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
if [ ! -f "$FMNIST" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null
fi
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]' 2>&1 \
  | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import archsearch, torch; print('archsearch', archsearch.__version__, 'torch', torch.__version__)"
