#!/usr/bin/env bash
# Installs everything archsearch needs on a fresh machine: Debian packages (Fashion-MNIST,
# Chromium for the report test),
# a virtual environment in .venv, and archsearch with its pinned dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian packages: Fashion-MNIST (the main job's data) and Chromium (the report's test
# renders the HTML report headless)
FMNIST=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
DEBS=""
[ -f "$FMNIST" ] || DEBS="dataset-fashion-mnist"
command -v chromium >/dev/null || DEBS="$DEBS chromium"
if [ -n "$DEBS" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq $DEBS >/dev/null
fi
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]' 2>&1 \
  | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import archsearch, torch; print('archsearch', archsearch.__version__, 'torch', torch.__version__)"
