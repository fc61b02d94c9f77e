#!/usr/bin/env bash
# Makes a Python virtual environment with OpenMined's PSI and python-paillier (`phe`), the
# references that `consentric-bench cleanroom --reference` runs side by side. Prints the
# interpreter's path.
# Usage: scripts/cleanroom-venv.sh [DIR]   (default: target/cleanroom-venv)
set -euo pipefail
dir="${1:-target/cleanroom-venv}"
if [ ! -x "$dir/bin/python" ]; then
  python3 -m venv "$dir" >&2
  "$dir/bin/pip" install --quiet --disable-pip-version-check "openmined.psi==2.0.6" "phe==1.5.0" "gmpy2" >&2
fi
echo "$dir/bin/python"
