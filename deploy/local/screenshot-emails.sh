#!/usr/bin/env bash
# Screenshot each rendered email (DIR/*.html) at phone (390 px) and desktop
# (1280 px) width with Debian's headless Chromium: DIR/NAME-390.png and
# DIR/NAME-1280.png, for a person to look at.
set -euo pipefail
dir="${1:?usage: screenshot-emails.sh DIR}"
if ! command -v chromium >/dev/null 2>&1; then
  echo "chromium is not installed (apt-get install chromium); skipping screenshots" >&2
  exit 0
fi
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
for page in "$dir"/*.html; do
  name="${page%.html}"
  for size in 390,1100 1280,900; do
    chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
      --disable-component-update --disable-sync --no-first-run --hide-scrollbars \
      --user-data-dir="$profile" --window-size="$size" \
      --screenshot="$name-${size%,*}.png" "file://$(realpath "$page")" >/dev/null 2>&1
  done
done
ls "$dir"/*.png
