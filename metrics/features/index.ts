// The feature-network registry: one spec string names a network and its weights.
//   "mnist"                      mnist-cnn-128 with the bundled project weights (assets/)
//   "mnist:PATH"                 mnist-cnn-128 with weights from PATH (safetensors)
//   "inception:PATH"             FID Inception-v3 (pytorch-fid .pth or SGA TorchScript .pt)
//   "vgg16:PATH"                 VGG16 fc2 (torchvision-layout state dict)
//   "PATH"                       any of the above, recognised by the tensor names in the file
// Nothing is downloaded: Inception and VGG16 weights are files the user supplies.

import type { Tensor } from "../../nn/tensor.ts";
import type { HostArray } from "../../nn/io/host.ts";
import { InceptionV3 } from "./inception.ts";
import { MNIST_ASSET, MnistNet } from "./mnist_net.ts";
import { Vgg16 } from "./vgg16.ts";
import { readWeightFile } from "./weights.ts";
import type { FidMode } from "./resize.ts";

export interface FeatureExtractOptions {
  /** Images per forward pass (memory vs. dispatch overhead). */
  batchSize?: number;
}

export interface FeatureNetwork {
  /** Names the network and its weights, e.g. "inception-v3-tf2015 (pytorch-fid weights)"; reports quote it. */
  name: string;
  dim: number;
  /** Features [N, dim] of NCHW f32 images holding 0..255 (1 or 3 channels, any size). */
  extract(imagesUint8NCHW: Tensor, opts?: FeatureExtractOptions): Tensor;
  /** Frees the network's GPU memory. */
  dispose(): void;
  /** The FID preprocessing convention, for networks that follow one (Inception); reports quote it. */
  readonly fidMode?: FidMode;
}

export type FeatureKind = "inception" | "vgg16" | "mnist";
const KINDS: FeatureKind[] = ["inception", "vgg16", "mnist"];

/** Which network a weight file holds, from its tensor names (null when none fits). */
export function detectFeatureKind(arrays: Map<string, HostArray>): FeatureKind | null {
  if (arrays.has("Conv2d_1a_3x3.conv.weight") || arrays.has("layers.conv.weight")) return "inception";
  if (arrays.has("features.0.weight") && arrays.has("classifier.0.weight")) return "vgg16";
  if (arrays.has("conv1.weight") && arrays.has("conv4.weight") && arrays.has("fc.weight")) return "mnist";
  return null;
}

function parseSpec(spec: string): { kind: FeatureKind | null; path: string | null } {
  const s = spec.trim();
  if (!s) {
    throw new Error(`empty feature network spec: use one of ${KINDS.join(", ")} (with :PATH) or a path`);
  }
  if (s === "mnist") return { kind: "mnist", path: null };
  const m = /^([a-z0-9]+):(.+)$/.exec(s);
  if (m && (KINDS as string[]).includes(m[1])) return { kind: m[1] as FeatureKind, path: m[2] };
  if (KINDS.includes(s as FeatureKind)) {
    throw new Error(`feature network '${s}' needs a weight file the user supplies: '${s}:PATH'`);
  }
  return { kind: null, path: s };
}

/** Loads a feature network from a spec (see the header of this file). */
export async function loadFeatureNetwork(
  spec: string,
  opts: { fidMode?: FidMode } = {},
): Promise<FeatureNetwork> {
  const { kind, path } = parseSpec(spec);
  const fidMode = opts.fidMode ?? "tf";
  if (kind === "mnist" && path === null) {
    return withSource(
      await readWeightFile(MNIST_ASSET, "mnist-cnn-128"),
      "mnist",
      "the bundled asset",
      fidMode,
    );
  }
  const arrays = await readWeightFile(path!, kind ?? "feature network");
  const detected = detectFeatureKind(arrays);
  const chosen = kind ?? detected;
  if (!chosen) {
    const names = [...arrays.keys()];
    throw new Error(
      `${path}: cannot tell which feature network this file holds (expected Inception, VGG16 or ` +
        `mnist-cnn-128 tensor names; it has ${names.length} tensors, e.g. ${
          names.slice(0, 5).join(", ") || "none"
        }); ` +
        `name the network explicitly, e.g. inception:${path}`,
    );
  }
  return withSource(arrays, chosen, path!, fidMode);
}

function withSource(
  arrays: Map<string, HostArray>,
  kind: FeatureKind,
  source: string,
  fidMode: FidMode,
): FeatureNetwork {
  if (kind !== "inception" && fidMode !== "tf") {
    throw new Error(
      `--fid-mode ${fidMode} applies to the Inception network only; ${kind} has its own preprocessing`,
    );
  }
  switch (kind) {
    case "inception":
      return new InceptionV3(arrays, { source, fidMode });
    case "vgg16":
      return new Vgg16(arrays, { source });
    case "mnist":
      return MnistNet.fromArrays(arrays, source);
  }
}

export { InceptionV3, MnistNet, Vgg16 };
export { loadMnistFeatureNet, trainMnistFeatureNet } from "./mnist_net.ts";
export { FID_MODES, type FidMode, parseFidMode, resizeBilinear, resizeBilinearTF1 } from "./resize.ts";
