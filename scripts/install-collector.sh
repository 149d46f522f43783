#!/bin/sh
# Installs the collector into a new virtual environment the way its container image does: the Dockerfile runs
# exactly this, and so does the test suite, into a fresh venv. Builds a wheel from the source tree (in a scratch
# copy, so the tree stays clean), installs it with its dependencies and its `report` extra (leather, pure Python:
# `templog report --format html` works in the image) into VENV, then removes the packaging tools (pip, setuptools)
# from VENV: the result runs `templog` and installs nothing.
# Usage: scripts/install-collector.sh VENV [SOURCE_DIR]     (SOURCE_DIR: default the repository root;
#        PYTHON: the interpreter to build with and to base VENV on, default python3)
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 VENV [SOURCE_DIR]" >&2
    exit 2
fi
venv=$1
src=${2:-$(dirname "$0")/..}
python=${PYTHON:-python3}

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir "$scratch/src" "$scratch/wheels"
cp -R "$src/pyproject.toml" "$src/README.md" "$src/collector" "$scratch/src/"

"$python" -m pip wheel --no-deps --no-cache-dir --wheel-dir "$scratch/wheels" "$scratch/src"
"$python" -m venv "$venv"
set -- "$scratch"/wheels/templog-*.whl
"$venv/bin/python" -m pip install --no-cache-dir "$1[report]"
"$venv/bin/python" -m pip uninstall --yes setuptools pip
"$venv/bin/templog" --version
