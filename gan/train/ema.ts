// Exponential moving average of the generator's weights (SGA): G_ema <- lerp(G, G_ema, beta) with
// beta = 0.5 ** (batch / ema_nimg), where ema_nimg may ramp up with the images seen; buffers are copied.

import { noGrad } from "../../nn/autograd.ts";
import { copyInto, emaInto, type Module } from "../../nn/module.ts";
import { scope } from "../../nn/tensor.ts";

/**
 * beta = 0.5 ** (batch / max(ema_nimg, 1e-8)), ema_nimg = emaKimg * 1000, or with a ramp-up
 * min(ema_nimg, curNimg * rampup) (so the average starts as a copy and lengthens as training goes).
 */
export function emaBeta(batch: number, emaKimg: number, rampup: number | null, curNimg: number): number {
  if (!(batch > 0)) throw new Error(`emaBeta: batch must be positive, got ${batch}`);
  if (!(emaKimg >= 0)) throw new Error(`emaBeta: emaKimg must be >= 0, got ${emaKimg}`);
  if (rampup !== null && !(rampup > 0)) {
    throw new Error(`emaBeta: rampup must be positive or null, got ${rampup}`);
  }
  if (!(curNimg >= 0)) throw new Error(`emaBeta: curNimg must be >= 0, got ${curNimg}`);
  let emaNimg = emaKimg * 1000;
  if (rampup !== null) emaNimg = Math.min(emaNimg, curNimg * rampup);
  return 0.5 ** (batch / Math.max(emaNimg, 1e-8));
}

/** Pairs of same-named tensors of two modules of one architecture; throws on a mismatch. */
function pairs(kind: string, a: [string, unknown][], b: [string, unknown][]): void {
  if (a.length !== b.length || a.some(([n], i) => n !== b[i][0])) {
    throw new Error(`EMA: the ${kind} of G and G_ema differ (not the same architecture)`);
  }
}

/** G_ema's parameters <- beta * G_ema + (1 - beta) * G; its buffers <- G's. Records GPU work only. */
export function updateEma(Gema: Module, G: Module, beta: number): void {
  if (!(beta >= 0 && beta <= 1)) throw new Error(`updateEma: beta must be in [0, 1], got ${beta}`);
  const pe = Gema.namedParameters(), p = G.namedParameters();
  const be = Gema.namedBuffers(), b = G.namedBuffers();
  pairs("parameters", pe, p);
  pairs("buffers", be, b);
  scope(() =>
    noGrad(() => {
      if (beta === 0) pe.forEach(([, dst], i) => copyInto(p[i][1], dst));
      else emaInto(pe.map(([, t]) => t), p.map(([, t]) => t), beta);
      be.forEach(([, dst], i) => copyInto(b[i][1], dst));
    })
  );
}
