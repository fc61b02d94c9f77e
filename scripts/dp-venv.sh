#!/usr/bin/env bash
# Makes a Python virtual environment with IBM's `diffprivlib`, the reference that
# `consentric-bench analytics --reference` runs side by side. Prints the interpreter's path.
# Usage: scripts/dp-venv.sh [DIR]   (default: target/dp-venv)
set -euo pipefail
dir="${1:-target/dp-venv}"
if [ ! -x "$dir/bin/python" ]; then
  python3 -m venv "$dir" >&2
  "$dir/bin/pip" install --quiet --disable-pip-version-check "diffprivlib==0.6.6" "scikit-learn==1.5.2" >&2
fi
echo "$dir/bin/python"
