// Mulberry32: a small, fast, seeded host-side generator in [0, 1) for shuffles, subsets and test inputs
// (GPU random numbers come from nn/creation.ts). One definition, so every seeded choice stays reproducible.
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
