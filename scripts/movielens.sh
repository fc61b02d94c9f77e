#!/usr/bin/env bash
# Fetches MovieLens 100k once and caches it. Its terms forbid redistribution, so it is never
# committed: this takes it from RecBole's wheel on PyPI (`pip download`), which carries it as
# `ml-100k.inter` (tab-separated user_id, item_id, rating, timestamp; 100,000 ratings, 943
# users, 1,682 items) and `ml-100k.item` (titles). Prints the path of the `.inter` file.
# Usage: scripts/movielens.sh [DIR]   (default: target/movielens)
set -euo pipefail
dir="${1:-target/movielens}"
inter="$dir/ml-100k.inter"
if [ ! -s "$inter" ]; then
  mkdir -p "$dir/wheel"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps \
    recbole==1.2.1 -d "$dir/wheel" >&2
  whl=$(ls "$dir"/wheel/recbole-1.2.1-*.whl)
  for f in inter item user; do
    unzip -p "$whl" "recbole/dataset_example/ml-100k/ml-100k.$f" > "$dir/ml-100k.$f.tmp"
    mv "$dir/ml-100k.$f.tmp" "$dir/ml-100k.$f"
  done
  rm -rf "$dir/wheel"
fi
echo "$inter"
