// Deterministic randomness: mutant i of a campaign is a pure function of
// (file system, seed image, campaign seed, i), so any mutant can be
// regenerated without the campaign that found it.

/** FNV-1a, 32 bits: turns the mutant's identity into a PRNG seed. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(s, 'utf8')) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}

/** mulberry32: small, fast, good enough to pick offsets and values. */
export class Rng {
  private a: number;
  constructor(seed: number) { this.a = seed >>> 0; }

  /** Uniform in [0, 1). */
  next(): number {
    this.a = (this.a + 0x6d2b79f5) >>> 0;
    let t = this.a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [0, n). */
  int(n: number): number { return Math.floor(this.next() * n); }

  pick<T>(xs: readonly T[]): T { return xs[this.int(xs.length)]; }

  /** An item chosen with probability proportional to weight(item). */
  weighted<T>(xs: readonly T[], weight: (x: T) => number): T {
    const total = xs.reduce((s, x) => s + weight(x), 0);
    let r = this.next() * total;
    for (const x of xs) {
      r -= weight(x);
      if (r < 0) return x;
    }
    return xs[xs.length - 1];
  }
}

export function mutantRng(fs: string, seedImage: string, campaignSeed: number, index: number): Rng {
  return new Rng(fnv1a(`${fs}/${seedImage}/${campaignSeed}/${index}`));
}
