#!/usr/bin/env bash
# Builds the hydration bundle into $TARGET/site/pkg, named after its content:
#   awoooi.<hash>.js and awoooi.<hash>_bg.wasm (wasm-bindgen), awoooi.<hash>.css,
#   awoooi.hash (the hash, which the server reads at start-up), and beside each file a
#   brotli (.br) and a gzip (.gz) copy that the server sends to browsers that accept them;
#   plus public/ at the site's root.
#   scripts/build-ui.sh [--release]
# The server and the WASM must come from the same profile (see BUILD notes in BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
profile=debug
flags=()
bindgen_flags=()
brotli_quality=9
if [ "${1:-}" = "--release" ]; then
  profile=wasm-release
  flags=(--profile wasm-release)
  # Function names are for debuggers; in the release bundle they were half its bytes.
  bindgen_flags=(--remove-name-section --remove-producers-section)
  brotli_quality=11
fi
cargo build -p frontend --target wasm32-unknown-unknown "${flags[@]}"
site="$TARGET_DIR/site"
fresh="$site/pkg.building"
rm -rf "$fresh"
mkdir -p "$fresh"
wasm-bindgen --target web --no-typescript "${bindgen_flags[@]}" --out-dir "$fresh" --out-name awoooi \
  "$TARGET_DIR/wasm32-unknown-unknown/$profile/frontend.wasm"
cp style/main.css "$fresh/awoooi.css"
hash=$(cat "$fresh/awoooi.js" "$fresh/awoooi_bg.wasm" "$fresh/awoooi.css" | sha256sum | cut -c1-16)
mv "$fresh/awoooi.js" "$fresh/awoooi.$hash.js"
mv "$fresh/awoooi_bg.wasm" "$fresh/awoooi.${hash}_bg.wasm"
mv "$fresh/awoooi.css" "$fresh/awoooi.$hash.css"
assets=("$fresh/awoooi.$hash.js" "$fresh/awoooi.${hash}_bg.wasm" "$fresh/awoooi.$hash.css")
for file in "${assets[@]}"; do gzip -9 -k -n "$file"; done
# Brotli from Node.js's zlib (Node is on the machine for the browser tests; Debian has no
# brotli in its base system). Without Node the server sends gzip.
if command -v node >/dev/null; then
  node -e '
    const fs = require("fs"), zlib = require("zlib");
    const quality = Number(process.argv[1]);
    for (const file of process.argv.slice(2)) {
      const data = fs.readFileSync(file);
      fs.writeFileSync(file + ".br", zlib.brotliCompressSync(data, { params: {
        [zlib.constants.BROTLI_PARAM_QUALITY]: quality,
        [zlib.constants.BROTLI_PARAM_SIZE_HINT]: data.length,
      } }));
    }' "$brotli_quality" "${assets[@]}"
else
  echo "node not found: no brotli copies (browsers get gzip)" >&2
fi
echo "$hash" > "$fresh/awoooi.hash"
rm -rf "$site/pkg"
mv "$fresh" "$site/pkg"
if [ -d public ] && [ -n "$(ls -A public)" ]; then cp -r public/. "$site/"; fi
printf 'UI assets in %s/pkg (build %s):\n' "$site" "$hash" >&2
for file in "$site/pkg/awoooi.${hash}_bg.wasm" "$site/pkg/awoooi.$hash.js"; do
  printf '  %-32s %9s raw %9s gzip %9s brotli\n' "$(basename "$file")" "$(wc -c <"$file")" \
    "$(wc -c <"$file.gz")" "$( [ -f "$file.br" ] && wc -c <"$file.br" || echo -)" >&2
done
