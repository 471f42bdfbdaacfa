import { randomBytes } from 'node:crypto';

/** Randomness comes in through this interface so cores and tests are deterministic under a seed. */
export interface Rng {
  bytes(length: number): Uint8Array;
  /** Uniform float in [0, 1). */
  float(): number;
  /** Uniform integer in [0, maxExclusive). */
  int(maxExclusive: number): number;
}

export const systemRng: Rng = {
  bytes: (length) => new Uint8Array(randomBytes(length)),
  float: () => randomBytes(4).readUInt32BE(0) / 0x1_0000_0000,
  int: (maxExclusive) => Math.floor((randomBytes(4).readUInt32BE(0) / 0x1_0000_0000) * maxExclusive),
};

/** Deterministic generator (sfc32 seeded through splitmix32); not for keys, only for tests and simulation. */
export class SeededRng implements Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  readonly seed: number;

  constructor(seed: number) {
    this.seed = seed >>> 0;
    let s = this.seed;
    const next = (): number => {
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
      z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
      return (z ^ (z >>> 15)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
  }

  private nextU32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  bytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = this.nextU32() & 0xff;
    return out;
  }

  float(): number {
    return this.nextU32() / 0x1_0000_0000;
  }

  int(maxExclusive: number): number {
    return Math.floor(this.float() * maxExclusive);
  }
}
