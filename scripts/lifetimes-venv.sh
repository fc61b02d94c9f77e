#!/usr/bin/env bash
# Makes a Python virtual environment with the `lifetimes` package, the reference that
# `consentric-bench lifecycle --reference` runs side by side. Prints the interpreter's path.
# Usage: scripts/lifetimes-venv.sh [DIR]   (default: target/lifetimes-venv)
set -euo pipefail
dir="${1:-target/lifetimes-venv}"
if [ ! -x "$dir/bin/python" ]; then
  python3 -m venv "$dir" >&2
  # lifetimes 0.11.3 predates NumPy 2 and pandas 2.2's removals; pin what it was built against.
  "$dir/bin/pip" install --quiet --disable-pip-version-check \
    "lifetimes==0.11.3" "numpy<2" "pandas<2.2" "scipy<1.14" "autograd==1.6.2" >&2
fi
echo "$dir/bin/python"
