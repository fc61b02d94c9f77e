#!/usr/bin/env bash
# Refreshes docs/images/ from the browser tests: the banner, its preferences dialog, each
# privacy-centre page and the console's pages, as headless Chromium draws them (needs chromium
# and chromium-driver).
set -euo pipefail
cd "$(dirname "$0")/.."
out="$PWD/docs/images"
mkdir -p "$out"
CONSENTRIC_SCREENSHOTS="$out" cargo test -p consentric-server --test it -- \
    banner_browser::the_banner_asks privacy_centre_browser:: banner_browser::with_global_privacy \
    console_browser::
ls -l "$out"
