#!/usr/bin/env bash
# Runs the engine on a bare GPU machine that cannot reach any registry (the workplace's lent H100/H200).
# What it needs travels beside the checkout, in ignored folders made on a machine that has the network:
#   .gpu/deno.xz          the pinned deno binary, xz-compressed (xz -c .tools/node_modules/deno/deno)
#   .gpu/denodir.tar.xz   a DENO_DIR holding the npm packages (DENO_DIR=D deno cache cli.ts bench/main.ts
#                         tests/*.ts; tar of D/npm and D/gen without the emoji packages' img/ folders)
#   .gl/*.deb             the Vulkan loader (libvulkan1 and the GL dispatch libraries; the device README)
# Usage: scripts/gpu_machine.sh info | test [deno test args] | bench [bench args] | run ARGS...
# Environment it sets: DENO_DIR, XDG_RUNTIME_DIR, GC_TORCH_DEVICE=cuda, GC_PYTHON=python3.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! ldconfig -p | grep -q libvulkan.so.1; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
nv_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -e "$nv_icd" ] && [ -z "${VK_DRIVER_FILES:-}" ]; then export VK_DRIVER_FILES="$nv_icd"; fi
export DENO_DIR=/tmp/gc-denodir XDG_RUNTIME_DIR=/tmp DENO_NO_UPDATE_CHECK=1
if ! [ -x /tmp/gc-deno ]; then
  xz -dc .gpu/deno.xz >/tmp/gc-deno && chmod +x /tmp/gc-deno
  mkdir -p "$DENO_DIR" && tar -xJf .gpu/denodir.tar.xz -C "$DENO_DIR"
fi
export GC_TORCH_DEVICE="${GC_TORCH_DEVICE:-cuda}" GC_PYTHON="${GC_PYTHON:-python3}"
deno=/tmp/gc-deno
what="${1:-info}"
shift || true
case "$what" in
  info) exec "$deno" run -A --cached-only cli.ts info "$@" ;;
  test) exec "$deno" test -A --cached-only --no-check=remote "$@" ;;
  bench) exec "$deno" run -A --cached-only bench/main.ts "$@" ;;
  run) exec "$deno" run -A --cached-only "$@" ;;
  *) echo "usage: $0 info|test|bench|run ..." >&2; exit 2 ;;
esac
