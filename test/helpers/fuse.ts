// FUSE requests as the kernel builds them, and a channel that feeds them to
// a session and keeps its replies: the protocol layer tested without a kernel.
import { constants } from 'node:os';
import type { FuseChannel } from '../../p2k/fuse/session.js';

export class FakeChannel implements FuseChannel {
  readonly queue: Buffer[] = [];
  readonly out: Buffer[] = [];
  ready: () => void = () => {};
  read(buf: Buffer): number {
    const q = this.queue.shift();
    if (!q) return -constants.errno.EAGAIN;
    q.copy(buf);
    return q.length;
  }
  writev(bufs: Uint8Array[]): number {
    const b = Buffer.concat(bufs);
    this.out.push(b);
    return b.length;
  }
  watch(ready: () => void): void { this.ready = ready; }
  close(): void {}
}

let unique = 0;
/** A request with a fresh unique (even, as the kernel's). */
export function request(opcode: number, nodeid: number, body: Buffer = Buffer.alloc(0), ids = { uid: 1000, gid: 100, pid: 42 }): Buffer {
  const h = Buffer.alloc(40);
  h.writeUInt32LE(40 + body.length, 0);
  h.writeUInt32LE(opcode, 4);
  h.writeBigUInt64LE(BigInt(unique += 2), 8);
  h.writeBigUInt64LE(BigInt(nodeid), 16);
  h.writeUInt32LE(ids.uid, 24); h.writeUInt32LE(ids.gid, 28); h.writeUInt32LE(ids.pid, 32);
  return Buffer.concat([h, body]);
}

export const u32s = (...v: number[]) => Buffer.concat(v.map(x => { const b = Buffer.alloc(4); b.writeUInt32LE(x >>> 0); return b; }));
