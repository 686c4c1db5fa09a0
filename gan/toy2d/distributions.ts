// 2-D distributions of the pretrained-GAN study (REFERENCE.md section 7) and the usual toy ones, as
// mixtures of simple components. One description serves three users: a seeded float64 host sampler
// (evaluation sets, tests), the on-GPU sampler of the fast trainer (it packs the same table into a
// uniform buffer), and closed-form moments (tests).
import { mulberry32 } from "../../nn/host_random.ts";

export type Component =
  /** Isotropic Gaussian. */
  | { kind: "gauss"; weight: number; cx: number; cy: number; sigma: number }
  /** Uniform angle on a circle, plus isotropic Gaussian noise of `sigma` (0: exactly on the circle). */
  | { kind: "circle"; weight: number; cx: number; cy: number; radius: number; sigma: number }
  /**
   * Wide ring: uniform angle, radius `radius + N(0, radialSigma^2)` (noise along the radius only);
   * `sigma` is an extra isotropic noise (0 for the study's source I).
   */
  | {
    kind: "ring";
    weight: number;
    cx: number;
    cy: number;
    radius: number;
    radialSigma: number;
    sigma: number;
  }
  /** Archimedean spiral arc: u ~ U(0,1), angle 2 pi turns u, radius rMin + (rMax - rMin) u, plus noise. */
  | { kind: "spiral"; weight: number; turns: number; rMin: number; rMax: number; sigma: number };

export interface Mixture {
  name: string;
  components: Component[];
}

/** Study constants: the target ring. */
export const RING_RADIUS = 20;
export const RING_MODES = 10;
export const RING_SIGMA = 0.25;

/** Centres of n modes evenly on a circle (the first on the positive x axis). */
export function ringCentres(n = RING_MODES, radius = RING_RADIUS): [number, number][] {
  return Array.from({ length: n }, (_, i) => {
    const t = (2 * Math.PI * i) / n;
    return [radius * Math.cos(t), radius * Math.sin(t)];
  });
}

/** Equal mixture of isotropic Gaussians at the given centres. */
export function gaussians(name: string, centres: [number, number][], sigma: number): Mixture {
  if (!(sigma >= 0)) throw new Error(`${name}: sigma must be >= 0, got ${sigma}`);
  return {
    name,
    components: centres.map(([cx, cy]) => ({ kind: "gauss", weight: 1 / centres.length, cx, cy, sigma })),
  };
}

/** The study's target: 10 Gaussians on a circle of radius 20, sigma 0.25. */
export function targetRing(): Mixture {
  return gaussians("target", ringCentres(), RING_SIGMA);
}

/** Source I's radial noise (REFERENCE.md 7: radius 20 + N(0, 4^2)). */
export const SOURCE1_RADIAL_SIGMA = 4;

/** Source I (REFERENCE.md 7): a wide ring, angle uniform, radius 20 + N(0, 4^2) along the radius only. */
export function sourceI(): Mixture {
  return {
    name: "sourceI",
    components: [
      {
        kind: "ring",
        weight: 1,
        cx: 0,
        cy: 0,
        radius: RING_RADIUS,
        radialSigma: SOURCE1_RADIAL_SIGMA,
        sigma: 0,
      },
    ],
  };
}

/**
 * The earlier, wrong reading of source I, kept for comparison (`--source1 mixture`): an equal mixture of
 * the uniform distribution on the radius-20 circle and N(0, 4^2 I). Never the study's default.
 */
export function sourceIMixture(): Mixture {
  return {
    name: "sourceI-mixture",
    components: [
      { kind: "circle", weight: 0.5, cx: 0, cy: 0, radius: RING_RADIUS, sigma: 0 },
      { kind: "gauss", weight: 0.5, cx: 0, cy: 0, sigma: 4 },
    ],
  };
}

/** Source II: 3 Gaussians (sigma 0.5) centred on three consecutive target centres (modes 0, 1, 2). */
export function sourceII(): Mixture {
  return gaussians("sourceII", ringCentres().slice(0, 3), 0.5);
}

/** The usual ring of n Gaussians (default at the study's scale). */
export function ring(n = 8, radius = RING_RADIUS, sigma = RING_SIGMA): Mixture {
  return gaussians(`ring${n}`, ringCentres(n, radius), sigma);
}

/** The usual n x n grid of Gaussians, centred on the origin. */
export function grid(n = 5, spacing = 10, sigma = RING_SIGMA): Mixture {
  const c: [number, number][] = [];
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) c.push([(i - (n - 1) / 2) * spacing, (j - (n - 1) / 2) * spacing]);
  }
  return gaussians(`grid${n}x${n}`, c, sigma);
}

/** A noisy spiral arc. */
export function spiral(turns = 1.5, rMin = 2, rMax = RING_RADIUS, sigma = 0.5): Mixture {
  return { name: "spiral", components: [{ kind: "spiral", weight: 1, turns, rMin, rMax, sigma }] };
}

/** Distributions by name (CLI and configs). */
export const DISTRIBUTIONS: Record<string, () => Mixture> = {
  target: targetRing,
  sourceI,
  "sourceI-mixture": sourceIMixture,
  sourceII,
  ring8: () => ring(),
  grid: () => grid(),
  spiral: () => spiral(),
};

export function distributionByName(name: string): Mixture {
  const f = DISTRIBUTIONS[name];
  if (!f) {
    throw new Error(`unknown 2-D distribution "${name}"; known: ${Object.keys(DISTRIBUTIONS).join(", ")}`);
  }
  return f();
}

/** Checks weights and parameters; returns normalised cumulative weights. */
export function cumulativeWeights(m: Mixture): number[] {
  if (m.components.length === 0) throw new Error(`mixture ${m.name} has no components`);
  let total = 0;
  for (const c of m.components) {
    if (!(c.weight > 0) || !Number.isFinite(c.weight)) {
      throw new Error(`mixture ${m.name}: component weights must be positive, got ${c.weight}`);
    }
    if (!(c.sigma >= 0)) throw new Error(`mixture ${m.name}: sigma must be >= 0, got ${c.sigma}`);
    total += c.weight;
  }
  let acc = 0;
  return m.components.map((c) => (acc += c.weight / total));
}

export { mulberry32 };

/** Seeded standard normal generator (Box-Muller on mulberry32). */
export function normalGenerator(seed: number): { uniform: () => number; normal: () => number } {
  const u = mulberry32(seed);
  let spare: number | null = null;
  const normal = () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    const u1 = 1 - u(), u2 = u(); // u1 in (0, 1]
    const r = Math.sqrt(-2 * Math.log(u1));
    spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  };
  return { uniform: u, normal };
}

/** Point of a spiral component at parameter u in [0, 1] (before noise). */
export function spiralPoint(c: { turns: number; rMin: number; rMax: number }, u: number): [number, number] {
  const t = 2 * Math.PI * c.turns * u, r = c.rMin + (c.rMax - c.rMin) * u;
  return [r * Math.cos(t), r * Math.sin(t)];
}

/** n samples (x, y interleaved, float64) from a mixture, reproducible from `seed`. */
export function sampleMixture(m: Mixture, n: number, seed: number): Float64Array {
  if (!Number.isInteger(n) || n < 0) throw new Error(`sampleMixture: bad sample count ${n}`);
  const cum = cumulativeWeights(m);
  const g = normalGenerator(seed);
  const out = new Float64Array(2 * n);
  for (let i = 0; i < n; i++) {
    const u = g.uniform();
    let j = 0;
    while (j < cum.length - 1 && u >= cum[j]) j++;
    const c = m.components[j];
    let x: number, y: number;
    if (c.kind === "gauss") {
      x = c.cx;
      y = c.cy;
    } else if (c.kind === "circle") {
      const t = 2 * Math.PI * g.uniform();
      x = c.cx + c.radius * Math.cos(t);
      y = c.cy + c.radius * Math.sin(t);
    } else if (c.kind === "ring") {
      const t = 2 * Math.PI * g.uniform(), r = c.radius + c.radialSigma * g.normal();
      x = c.cx + r * Math.cos(t);
      y = c.cy + r * Math.sin(t);
    } else [x, y] = spiralPoint(c, g.uniform());
    out[2 * i] = x + c.sigma * g.normal();
    out[2 * i + 1] = y + c.sigma * g.normal();
  }
  return out;
}

export interface Moments {
  mean: [number, number];
  /** Covariance [[xx, xy], [xy, yy]] as [xx, xy, yy]. */
  cov: [number, number, number];
}

/** Exact mean and covariance of a mixture (spirals by 4096-point midpoint quadrature). */
export function mixtureMoments(m: Mixture): Moments {
  const cum = cumulativeWeights(m);
  let mx = 0, my = 0, sxx = 0, sxy = 0, syy = 0;
  m.components.forEach((c, j) => {
    const w = cum[j] - (j > 0 ? cum[j - 1] : 0);
    let ex: number, ey: number, exx: number, exy: number, eyy: number;
    if (c.kind === "gauss" || c.kind === "circle" || c.kind === "ring") {
      // E[r^2 cos^2 t] = E[r^2] / 2 for a uniform angle t independent of r.
      const r2 = c.kind === "circle"
        ? c.radius ** 2
        : c.kind === "ring"
        ? c.radius ** 2 + c.radialSigma ** 2
        : 0;
      const spread = r2 / 2;
      ex = c.cx;
      ey = c.cy;
      exx = c.cx * c.cx + spread;
      eyy = c.cy * c.cy + spread;
      exy = c.cx * c.cy;
    } else {
      const q = 4096;
      ex =
        ey =
        exx =
        exy =
        eyy =
          0;
      for (let i = 0; i < q; i++) {
        const [x, y] = spiralPoint(c, (i + 0.5) / q);
        ex += x / q;
        ey += y / q;
        exx += x * x / q;
        exy += x * y / q;
        eyy += y * y / q;
      }
    }
    const s2 = c.sigma * c.sigma;
    mx += w * ex;
    my += w * ey;
    sxx += w * (exx + s2);
    sxy += w * exy;
    syy += w * (eyy + s2);
  });
  return { mean: [mx, my], cov: [sxx - mx * mx, sxy - mx * my, syy - my * my] };
}

/** Sample mean and covariance (divided by n) of interleaved points. */
export function sampleMoments(xy: ArrayLike<number>): Moments {
  const n = xy.length / 2;
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(`sampleMoments: need x,y pairs, got ${xy.length} values`);
  }
  let mx = 0, my = 0;
  for (let i = 0; i < n; i++) {
    mx += xy[2 * i] / n;
    my += xy[2 * i + 1] / n;
  }
  let sxx = 0, sxy = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = xy[2 * i] - mx, dy = xy[2 * i + 1] - my;
    sxx += dx * dx / n;
    sxy += dx * dy / n;
    syy += dy * dy / n;
  }
  return { mean: [mx, my], cov: [sxx, sxy, syy] };
}

/** Index of the nearest centre to (x, y). */
export function nearestCentre(x: number, y: number, centres: [number, number][]): number {
  let best = 0, bd = Infinity;
  centres.forEach(([cx, cy], i) => {
    const d = (x - cx) ** 2 + (y - cy) ** 2;
    if (d < bd) {
      bd = d;
      best = i;
    }
  });
  return best;
}
