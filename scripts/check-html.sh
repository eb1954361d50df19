#!/usr/bin/env bash
# Opens the HTML report of the demo data in headless Chromium and checks that the charts render:
# the rendered DOM must hold the expected SVG charts and the screenshot must not be blank.
# Needs Debian's chromium (apt-get install chromium) and Python 3 with Pillow (pip install pillow).
# Usage: scripts/check-html.sh [OUT_DIR]   (writes report.html and report.png there; default target/html-check)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/html-check}"
mkdir -p "$out"
cargo run --quiet -p custmetrics-cli -- report \
  -t testdata/demo/transactions.csv -i testdata/demo/interactions.csv -c testdata/demo/customers.csv \
  --format html --output "$out/report.html" --quiet
chrome_flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
  --disable-background-networking --disable-component-update --disable-sync
  --user-data-dir="$(mktemp -d)" --hide-scrollbars)
url="file://$(realpath "$out/report.html")"
chromium "${chrome_flags[@]}" --dump-dom "$url" > "$out/dom.html" 2>/dev/null
chromium "${chrome_flags[@]}" --window-size=1200,2400 --screenshot="$out/report.png" "$url" 2>/dev/null
python3 - "$out" <<'PY'
import sys, re
from PIL import Image
out = sys.argv[1]
dom = open(f"{out}/dom.html", encoding="utf-8").read()
svgs = len(re.findall(r"<svg\b", dom))
paths = len(re.findall(r"<path\b", dom))
cells = len(re.findall(r'<td style="background', dom))
img = Image.open(f"{out}/report.png").convert("RGB")
colors = len(img.getcolors(maxcolors=1 << 20) or [])
nonwhite = sum(1 for p in img.get_flattened_data() if p != (255, 255, 255)) / (img.width * img.height)
print(f"rendered: {svgs} svg charts, {paths} paths, {cells} heatmap cells; screenshot {img.width}x{img.height}, {colors} colours, {nonwhite:.1%} non-white")
assert svgs >= 8, "expected at least 8 charts"
assert paths >= 10 and cells >= 100, "charts or heatmap missing"
assert colors > 50 and nonwhite > 0.05, "screenshot looks blank"
print("ok")
PY
