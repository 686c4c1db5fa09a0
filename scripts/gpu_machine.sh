#!/usr/bin/env bash
# Runs the engine on a bare GPU machine that cannot reach any registry (the workplace's lent H100/H200).
# What it needs travels beside the checkout, in ignored folders made on a machine that has the network:
#   .gpu/deno.xz          the pinned deno binary, xz-compressed (xz -c .tools/node_modules/deno/deno)
#   .gpu/denodir.tar.xz   a DENO_DIR holding the npm packages (DENO_DIR=D deno cache cli.ts bench/main.ts
#                         tests/*.ts; tar of D/npm and D/gen without the emoji packages' img/ folders)
#   .gl/*.deb             the Vulkan loader (libvulkan1 and the GL dispatch libraries; the device README)
# Usage: scripts/gpu_machine.sh info | test [deno test args] | bench [bench args] | run ARGS... | session [recheck]
#   session: the whole prepared check in one call, well under 10 minutes, logs under $OUT (see below);
#   session recheck: a shorter one (~5 minutes) for a lease's second call.
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
  session)
    # One lease's check (#11): GEMM tile autotune (cached in $OUT/gemm-tiles.json), the heavy bench rows
    # beside PyTorch CUDA fp32 (TF32 off), the training iterations' GPU time by kernel family
    # (timestamp-query) with the tuned and the default tiles, the demo's merge stage in images per second,
    # then the kernel tests. Each step has its
    # own time limit, so a slow one cannot take the rest with it.
    out="${OUT:?session writes under \$OUT}"
    export GC_GEMM_TILE_CACHE="$out/gemm-tiles.json"
    step() { # step NAME SECONDS CMD...: runs CMD with a limit, output to $out/NAME.log and the terminal
      local name=$1 limit=$2 t0=$SECONDS rc=0
      shift 2
      echo "=== $name (limit ${limit}s)"
      timeout "$limit" "$@" >"$out/$name.log" 2>&1 || rc=$?
      tail -n "${TAIL:-25}" "$out/$name.log"
      echo "=== $name: rc $rc in $((SECONDS - t0)) s"
    }
    nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv || true
    GC_GEMM_AUTOTUNE=force step info 60 "$deno" run -A --cached-only cli.ts info
    if [ "${1:-full}" = recheck ]; then
      # The short second call of a lease: the tune, the core rows, one profile, the tests that changed.
      TAIL=40 step bench 140 "$deno" run -A --cached-only bench/main.ts --heavy --no-jax --json "$out/bench.json" \
        --filter 'matmul 4096|conv2d (fwd|dx|dw) b32|train iter (tiny64|paper256)'
      TAIL=20 step profile 40 "$deno" run -A --cached-only bench/dispatch_profile.ts 'train iter paper256' 3 --time
      TAIL=30 step tests 90 "$deno" test -A --cached-only --no-check=remote tests/gemm_tiles_test.ts \
        tests/adam_multi_test.ts tests/ops_test.ts tests/conv2d_test.ts tests/matmul_test.ts
      exit 0
    fi
    TAIL=60 step bench 180 "$deno" run -A --cached-only bench/main.ts --heavy --no-jax --json "$out/bench.json" \
      --filter 'matmul (2048|4096)|conv2d (fwd|dx|dw) b32|modulatedConv2d|train iter (tiny64|paper256)|dispatch overhead'
    TAIL=40 step profile 70 "$deno" run -A --cached-only bench/dispatch_profile.ts 'train iter (tiny64|paper256)' 5 --time
    TAIL=12 GC_GEMM_AUTOTUNE=0 step profile_default 50 "$deno" run -A --cached-only bench/dispatch_profile.ts \
      'train iter (tiny64|paper256)' 5
    TAIL=8 step merge_stage 40 "$deno" run -A --cached-only bench/merge_stage.ts 3
    TAIL=30 step tests 120 "$deno" test -A --cached-only --no-check=remote tests/gemm_tiles_test.ts \
      tests/matmul_test.ts tests/gemm_prologue_test.ts tests/conv2d_test.ts tests/fusion_test.ts tests/ops_test.ts \
      tests/stylegan_ops_test.ts tests/stylegan2_test.ts tests/layers_test.ts tests/leak_test.ts \
      tests/adam_multi_test.ts tests/axpby_multi_test.ts tests/metric_ops_test.ts tests/f16_test.ts
    ;;
  *) echo "usage: $0 info|test|bench|run ...|session" >&2; exit 2 ;;
esac
