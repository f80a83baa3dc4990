#!/usr/bin/env bash
# Rebuild .dvc/plots/offline.html: DVC's plots page with Vega, Vega-Lite and Vega-Embed
# inlined, so `dvc plots show` renders offline (DVC's own page loads them from a CDN).
# The versions are the ones dvc-render's page asks for; the packages come from npm.
set -euo pipefail
cd "$(dirname "$0")/.."
versions=(vega@5.20.2 vega-lite@5.2.0 vega-embed@6.18.2)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "${versions[@]}" >/dev/null)
out=.dvc/plots/offline.html
mkdir -p "$(dirname "$out")"
{
  printf '<!DOCTYPE html>\n<html>\n<head>\n{refresh_tag}\n<meta charset="utf-8">\n'
  printf '<title>epochline plots</title>\n'
  printf '<!-- Built by scripts/vendor-vega.sh from %s (BSD-3-Clause, licences below). -->\n' "${versions[*]}"
  for spec in "${versions[@]}"; do
    name=${spec%@*}
    mkdir -p "$work/$name"
    tar -xzf "$work/$name-${spec#*@}.tgz" -C "$work/$name"
    printf '<!--\n%s licence:\n' "$spec"
    sed 's/--/- -/g' "$work/$name/package/LICENSE"
    printf -- '-->\n<script>\n'
    cat "$work/$name/package/build/$name.min.js"
    printf '\n</script>\n'
  done
  printf '<style>body { font-family: sans-serif; } table { border-spacing: 15px; }</style>\n'
  printf '</head>\n<body>\n{plot_divs}\n</body>\n</html>\n'
} > "$out"
echo "wrote $out ($(wc -c < "$out") bytes)"
