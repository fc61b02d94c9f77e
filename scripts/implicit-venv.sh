#!/usr/bin/env bash
# Makes a Python virtual environment with the `implicit` package, the reference that
# `consentric recommend evaluate --reference` runs side by side. Prints the interpreter's path.
# Usage: scripts/implicit-venv.sh [DIR]   (default: target/implicit-venv)
set -euo pipefail
dir="${1:-target/implicit-venv}"
if [ ! -x "$dir/bin/python" ]; then
  python3 -m venv "$dir" >&2
  "$dir/bin/pip" install --quiet --disable-pip-version-check \
    "implicit==0.7.3" "numpy==2.4.6" "scipy==1.17.1" >&2
fi
echo "$dir/bin/python"
