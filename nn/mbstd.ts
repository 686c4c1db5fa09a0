// Minibatch standard deviation (SGA): samples i, i + N/G, i + 2N/G, ... form a group; the group's std per
// feature, averaged over channels-in-group and pixels, is appended as `numChannels` constant channels.
// Written with differentiable ops, so R1's second-order gradient passes through it.

import { add, sqrt, square, sub } from "./ops.ts";
import { mean } from "./reduce.ts";
import { broadcastTo, concat, reshape } from "./shape.ts";
import type { Tensor } from "./tensor.ts";

export function minibatchStd(x: Tensor, o: { groupSize?: number; numChannels?: number } = {}): Tensor {
  if (x.rank !== 4) throw new Error(`minibatchStd: x must be [N, C, H, W], got [${x.shape}]`);
  const [n, c, h, w] = x.shape;
  const g = Math.min(o.groupSize ?? 4, n);
  const f = o.numChannels ?? 1;
  if (!Number.isInteger(g) || g < 1 || n % g !== 0) {
    throw new Error(`minibatchStd: the batch ${n} must be divisible by the group size ${g}`);
  }
  if (!Number.isInteger(f) || f < 1 || c % f !== 0) {
    throw new Error(`minibatchStd: the channels ${c} must be divisible by numChannels ${f}`);
  }
  const groups = n / g;
  const y = reshape(x, [g, groups, f, c / f, h, w]);
  const centred = sub(y, mean(y, 0, true));
  const std = sqrt(add(mean(square(centred), 0), 1e-8)); // [groups, f, c/f, h, w]
  const s = mean(std, [2, 3, 4]); // [groups, f]
  // Sample i belongs to group i % groups: tile [groups, f] over the G copies and the pixels.
  const tiled = reshape(broadcastTo(reshape(s, [1, groups, f, 1, 1]), [g, groups, f, h, w]), [n, f, h, w]);
  return concat([x, tiled], 1);
}
