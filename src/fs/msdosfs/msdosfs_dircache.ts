// What dir_create needs of a directory, kept with its node between creates
// so that a create costs the same in a directory of 20 or 20,000 entries:
// the short names taken (and, per generated-name base, which ~N tails), and
// where the free slots are. Built by one scan; kept by dir_create and
// dir_remove (callers hold the directory exclusively); dropped on a failed
// write (the next create scans again).

const key11 = (b: Uint8Array) => String.fromCharCode(...b);

/** `~N` tails: N from 1 to 999999, numbers of 1 to 6 digits. */
const MAX_DIGITS = 6;

/** A short name whose base ends in `~N`: `digits:prefix:ext`, N and its digits; else null. */
function parseTail(b: Uint8Array): { key: string; n: number; digits: number } | null {
  let end = 8;
  while (end > 0 && b[end - 1] === 0x20) end--;
  let t = end - 1;
  while (t >= 0 && b[t] >= 0x30 && b[t] <= 0x39) t--;
  const digits = end - 1 - t;
  if (t < 0 || b[t] !== 0x7e || digits === 0 || digits > MAX_DIGITS || b[t + 1] === 0x30) return null;
  return {
    key: `${digits}:${key11(b.subarray(0, t))}:${key11(b.subarray(8, 11))}`,
    n: Number(String.fromCharCode(...b.subarray(t + 1, end))),
    digits,
  };
}

interface Tails {
  taken: Set<number>;
  /** Every N of this width below it is taken. */
  low: number;
}

/** The short names in a directory (duplicates counted: damaged media have them). */
export class ShortNames {
  private readonly count = new Map<string, number>();
  private readonly tails = new Map<string, Tails>();

  has(b: Uint8Array): boolean {
    return this.count.has(key11(b));
  }

  add(b: Uint8Array): void {
    const k = key11(b);
    const n = (this.count.get(k) ?? 0) + 1;
    this.count.set(k, n);
    const t = n === 1 ? parseTail(b) : null;
    if (!t) return;
    let e = this.tails.get(t.key);
    if (!e) this.tails.set(t.key, e = { taken: new Set(), low: 10 ** (t.digits - 1) });
    e.taken.add(t.n);
  }

  remove(b: Uint8Array): void {
    const k = key11(b);
    const n = (this.count.get(k) ?? 0) - 1;
    if (n > 0) { this.count.set(k, n); return; }
    this.count.delete(k);
    const t = parseTail(b);
    const e = t && this.tails.get(t.key);
    if (!e) return;
    e.taken.delete(t.n);
    if (t.n < e.low) e.low = t.n;
  }

  /**
   * The lowest free generated name for a base and extension: base cut to
   * make room for `~N`, N from 1 up (as the linear search of NetBSD's
   * unix2dosfn callers finds it), without walking the taken ones again.
   * make(prefix, tail) gives the 11 bytes as stored.
   */
  freeTail(base: readonly number[], make: (name: number[]) => Uint8Array): Uint8Array | null {
    for (let d = 1; d <= MAX_DIGITS; d++) {
      const lo = 10 ** (d - 1), hi = 10 ** d;
      const prefix = base.slice(0, 8 - 1 - d);
      const name = (n: number) => make([...prefix, 0x7e, ...[...String(n)].map(c => c.charCodeAt(0))]);
      const e = this.tails.get(parseTail(name(lo))!.key);
      let n = e ? Math.max(e.low, lo) : lo;
      while (n < hi && e?.taken.has(n)) n++;
      if (e) e.low = n;
      if (n < hi) return name(n);
    }
    return null;
  }
}

/** Runs of deleted slots (sorted, [start, length]) and the end-of-directory mark. */
export class FreeSlots {
  constructor(
    private readonly runs: [number, number][],
    /** Slot of the end mark (= total when there is none). */
    public end: number,
    /** Slots the directory's blocks hold. */
    public total: number,
  ) {}

  /** Where `need` consecutive free slots start: a run of deleted ones, else at the end (which may be past total). */
  find(need: number): number {
    const run = this.runs.find(([, n]) => n >= need);
    if (run) return run[0];
    // Deleted slots just before the end mark count too.
    const last = this.runs[this.runs.length - 1];
    return last && last[0] + last[1] === this.end ? last[0] : this.end;
  }

  /** Slots [start, start + n), found by find(), are used now. */
  take(start: number, n: number): void {
    const i = this.runs.findIndex(([st]) => st === start);
    if (i >= 0) {
      const run = this.runs[i];
      if (run[1] > n) { run[0] += n; run[1] -= n; } else this.runs.splice(i, 1);
    }
    this.end = Math.max(this.end, start + n);
  }

  /** Slots [start, start + n) were deleted. */
  release(start: number, n: number): void {
    let i = 0, lo = 0, hi = this.runs.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (this.runs[mid][0] < start) lo = mid + 1; else hi = mid; }
    i = lo;
    const prev = this.runs[i - 1], next = this.runs[i];
    if (prev && prev[0] + prev[1] === start) {
      prev[1] += n;
      if (next && start + n === next[0]) { prev[1] += next[1]; this.runs.splice(i, 1); }
    } else if (next && start + n === next[0]) {
      next[0] = start;
      next[1] += n;
    } else {
      this.runs.splice(i, 0, [start, n]);
    }
  }
}

/** Both, for one directory. */
export interface DirLayout {
  shorts: ShortNames;
  free: FreeSlots;
}
