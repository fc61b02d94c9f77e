#!/usr/bin/env bash
# Fetches Klaro (the open-source consent manager) from npm once, for the side-by-side figures
# of docs/benchmarks.md, and prints the directory holding its release files.
# Usage: scripts/klaro.sh [DIR]   (default: target/klaro)
set -euo pipefail
dir="${1:-target/klaro}"
version=0.7.22
if [ ! -s "$dir/package/dist/klaro.js" ]; then
  mkdir -p "$dir"
  (cd "$dir" && npm pack --silent "klaro@$version" >/dev/null && tar xzf "klaro-$version.tgz")
fi
echo "$PWD/$dir/package/dist"
