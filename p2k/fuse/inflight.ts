// What a FUSE session shares with the supervisor that outlives it (read-only
// mounts; the supervisor is C: src/rumpuser/launch.c): a small memory region
// (a memfd the first server makes and hands over, mapped by both) holding
// the INIT the kernel and the first server settled, and the `unique` of
// every request the server has read and not yet answered. When the server
// dies, the supervisor answers those EIO on the same /dev/fuse descriptor
// (no caller waits forever), clears the slots and the no-slot counter, and
// starts a new server, which takes the INIT from here (the kernel sends
// INIT only once per connection).
//
// Layout (little-endian, as the host). Kept in step with launch.c's
// REGION_* constants, which read it (test/fuse-inflight.test.ts checks it):
//   u32[0]  MAGIC
//   u32[1]  1 once INIT is settled
//   u32[2]  protocol minor   u32[3] INIT flags   u32[4] max_write   u32[5] max_readahead
//   u32[6]  requests that found no free slot (not tracked: their callers would wait)
//   f64[8..] one slot per request in flight: its unique, 0 when free
// A slot is written when the request is read and cleared after its reply is
// written: a crash between the two leaves an answered unique, whose EIO the
// kernel refuses (ENOENT: uniques are never reused), harmless.
import type { FuseConnInfo } from './session.js';

export const INFLIGHT_BYTES = 64 * 1024;
const MAGIC = 0x52535452; // "RTSR"
const HEADER = 64;
const SLOTS = (INFLIGHT_BYTES - HEADER) / 8;

export class Inflight {
  private readonly hdr: Uint32Array;
  private readonly slots: Float64Array;
  /** Free slots, lowest on top (few pages touched). */
  private readonly free: number[] = [];

  constructor(mem: ArrayBuffer) {
    if (mem.byteLength < INFLIGHT_BYTES) throw new Error(`in-flight region of ${mem.byteLength} bytes, want ${INFLIGHT_BYTES}`);
    this.hdr = new Uint32Array(mem, 0, HEADER / 4);
    this.slots = new Float64Array(mem, HEADER, SLOTS);
    if (this.hdr[0] !== MAGIC) {
      this.hdr.fill(0);
      this.slots.fill(0);
      this.hdr[0] = MAGIC;
    }
    for (let i = SLOTS - 1; i >= 0; i--) if (this.slots[i] === 0) this.free.push(i);
  }

  /** A request was read: its slot, or -1 when none is free. */
  begin(unique: number): number {
    const s = this.free.pop();
    if (s === undefined) { this.hdr[6]++; return -1; }
    this.slots[s] = unique;
    return s;
  }

  /** Its reply was written (or it needs none). */
  end(slot: number): void {
    if (slot < 0) return;
    this.slots[slot] = 0;
    this.free.push(slot);
  }

  /** The INIT settled with the kernel, for the servers after this one. */
  setConn(c: FuseConnInfo): void {
    this.hdr[2] = c.minor;
    this.hdr[3] = c.flags >>> 0;
    this.hdr[4] = c.maxWrite;
    this.hdr[5] = c.maxReadahead;
    this.hdr[1] = 1;
  }

  /** The INIT an earlier server settled, or null (INIT still to come). */
  conn(): FuseConnInfo | null {
    if (this.hdr[1] !== 1) return null;
    return { minor: this.hdr[2], flags: this.hdr[3], maxWrite: this.hdr[4], maxReadahead: this.hdr[5] };
  }
}
