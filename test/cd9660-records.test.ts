// The in-place readers of directory records and Rock Ridge that the walks
// use (no object per record): the same fields and the same errors as the
// parsers that build objects, on synthetic records placed anywhere in a
// buffer; Rock Ridge decoded in part (a walk's names, a node's attributes)
// agrees with a full analysis and fails on the same damage.
import { describe, expect, it } from 'vitest';
import {
  checkDirRecord, isDotRecord, parseDirRecord, recDataLength, recDot, recFlags, recNameLen, recStart, recSuStart,
} from '../src/fs/cd9660/iso.js';
import { recordStart } from '../src/fs/cd9660/cd9660_node.js';
import { cd9660_rrip_analyze, RRIP_ALL, RRIP_ATTRS, RRIP_NAME } from '../src/fs/cd9660/cd9660_rrip.js';
import { rripfntrans, rripfntransAt } from '../src/fs/cd9660/cd9660_util.js';

/** A directory record: name bytes, then system use bytes. */
function record(name: number[], su: number[], o: { extent?: number; ext?: number; size?: number; flags?: number } = {}): number[] {
  const nl = name.length, pad = nl & 1 ? 0 : 1;
  const len = 33 + nl + pad + su.length;
  const r = new Array<number>(len).fill(0);
  r[0] = len;
  r[1] = o.ext ?? 0;
  const le = (v: number, at: number) => { for (let i = 0; i < 4; i++) r[at + i] = (v >>> (8 * i)) & 0xff; };
  const be = (v: number, at: number) => { for (let i = 0; i < 4; i++) r[at + 3 - i] = (v >>> (8 * i)) & 0xff; };
  le(o.extent ?? 1234, 2); be(o.extent ?? 1234, 6);
  le(o.size ?? 5678, 10); be(o.size ?? 5678, 14);
  r.splice(18, 7, 124, 6, 15, 12, 30, 45, 4); // 2024-06-15 12:30:45 +01:00
  r[25] = o.flags ?? 0;
  r[32] = nl;
  r.splice(33, nl, ...name);
  r.splice(33 + nl + pad, su.length, ...su);
  return r;
}
const ascii = (s: string) => [...Buffer.from(s, 'utf8')];
const both32 = (v: number) => [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >>> 24, v >>> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff];
const entry = (sig: string, body: number[]) => [sig.charCodeAt(0), sig.charCodeAt(1), 4 + body.length, 1, ...body];
const PX = (mode: number) => entry('PX', [...both32(mode), ...both32(1), ...both32(1000), ...both32(100), ...both32(77)]);
const NM = (s: string, flags = 0) => entry('NM', [flags, ...ascii(s)]);
const TF = () => entry('TF', [0x0e, 120, 1, 2, 3, 4, 5, 0, 121, 1, 2, 3, 4, 5, 0, 122, 1, 2, 3, 4, 5, 0]);
const SL = (t: string) => entry('SL', [0, 0, t.length, ...ascii(t)]);
const CL = (blk: number) => entry('CL', both32(blk));
const RE = () => entry('RE', []);

/** The record's bytes at offset `at` of a 2 KiB sector of junk (0xee). */
function placed(r: number[], at: number): Uint8Array {
  const b = new Uint8Array(2048).fill(0xee);
  b.set(r, at);
  return b;
}

const noRead = async () => { throw new Error('no continuation area here'); };
const errOf = (f: () => unknown): string | null => {
  try { f(); return null; } catch (e) { return (e as { code?: string }).code ?? String(e); }
};

describe('cd9660 records read in place', () => {
  it('gives the fields parseDirRecord gives, anywhere in a sector', () => {
    for (const [name, ext, flags] of [[ascii('A.TXT;1'), 0, 0], [ascii('DIR1'), 2, 2], [[0], 0, 2], [[1], 0, 2], [ascii('MULTI.BIN;1'), 0, 0x80]] as const) {
      const r = record([...name], [...PX(0o100644), ...NM('x')], { ext, flags, extent: 99, size: 4097 });
      for (const at of [0, 1, 37, 2048 - r.length]) {
        const b = placed(r, at);
        checkDirRecord(b, at, 'test');
        const d = parseDirRecord(b.subarray(at, at + b[at]), 'test');
        expect(recFlags(b, at)).toBe(d.flags);
        expect(recNameLen(b, at)).toBe(d.name.length);
        expect(recDataLength(b, at)).toBe(d.dataLength);
        expect(recStart(b, at)).toBe(recordStart(d));
        expect(recDot(b, at)).toBe(isDotRecord(d));
        expect(b.subarray(recSuStart(b, at), at + b[at])).toEqual(d.systemUse);
      }
    }
  });

  it('checkDirRecord fails (EIO) exactly where parseDirRecord does', () => {
    let seed = 12345;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000;
    let bad = 0;
    for (let i = 0; i < 2000; i++) {
      const r = record(ascii('NAME' + i), PX(0o100644));
      // Damage the length or the name length.
      if (rnd() < 0.5) r[0] = Math.floor(rnd() * 256); else r[32] = Math.floor(rnd() * 256);
      const len = r[0];
      const b = placed(r.slice(0, Math.max(1, Math.min(len, r.length))), 100);
      if (len === 0 || 100 + len > b.length) continue; // the walk refuses those before
      const a = errOf(() => checkDirRecord(b, 100, 'test'));
      const p = errOf(() => parseDirRecord(b.subarray(100, 100 + len), 'test'));
      expect(a).toBe(p);
      if (a) bad++;
    }
    expect(bad).toBeGreaterThan(100);
  });
});

describe('cd9660 Rock Ridge decoded in part', () => {
  const su = [...PX(0o120777), ...TF(), ...NM('long name.txt'), ...SL('target'), ...CL(55), ...RE()];
  const b = placed(su, 300);
  const full = cd9660_rrip_analyze(b, 300, 300 + su.length, noRead, 'test', RRIP_ALL);

  it('a range of a sector gives what a copy of it gives', () => {
    expect(full).toEqual(cd9660_rrip_analyze(new Uint8Array(su), 0, su.length, noRead, 'test'));
    expect(full).toMatchObject({ name: 'long name.txt', mode: 0o120777, symlink: 'target', childLink: 55, relocated: true });
    expect((full as { mtime?: unknown }).mtime).toBeDefined();
  });

  it("a walk's part (RRIP_NAME): name, mode, CL and RE; no times, link target or owner decoding needed", () => {
    const r = cd9660_rrip_analyze(b, 300, 300 + su.length, noRead, 'test', RRIP_NAME) as { mtime?: unknown; symlink?: string };
    expect(r).toMatchObject({ name: 'long name.txt', mode: 0o120777, childLink: 55, relocated: true });
    expect(r.mtime).toBeUndefined();
    expect(r.symlink).toBeUndefined();
  });

  it("a node's part (RRIP_ATTRS): everything but the name", () => {
    const r = cd9660_rrip_analyze(b, 300, 300 + su.length, noRead, 'test', RRIP_ATTRS);
    expect(r).toEqual({ ...full, name: undefined });
  });

  it('damage fails every part the same way', () => {
    for (const cut of [TF().slice(0, 10), SL('abc').slice(0, 7)]) {
      const bad = [...NM('n'), ...cut.map((x, i) => (i === 2 ? cut.length : x))];
      // A TF whose flags ask for more dates than it holds; an SL component past its entry.
      if (cut[0] === 0x53) bad[NM('n').length + 6] = 200;
      const area = placed(bad, 10);
      const errs = [RRIP_ALL, RRIP_NAME, RRIP_ATTRS].map(w => errOf(() => cd9660_rrip_analyze(area, 10, 10 + bad.length, noRead, 'test', w)));
      expect(errs).toEqual(['EIO', 'EIO', 'EIO']);
    }
  });

  it('a name continued over NM entries is whole in every part that decodes it', () => {
    const two = [...NM('first-', 1), ...NM('second')];
    const area = placed(two, 7);
    expect(cd9660_rrip_analyze(area, 7, 7 + two.length, noRead, 'test', RRIP_NAME)).toMatchObject({ name: 'first-second' });
    expect((cd9660_rrip_analyze(area, 7, 7 + two.length, noRead, 'test', RRIP_ATTRS) as { name?: string }).name).toBeUndefined();
  });

  it('rripfntransAt reads a name in place as rripfntrans reads a copy: UTF-8, no `/` or NUL', () => {
    const cases: [Uint8Array, string][] = [
      ...(['plain.txt', 'ünïcödé', ''] as const).map(s => [new Uint8Array(Buffer.from(s, 'utf8')), s] as [Uint8Array, string]),
      [new Uint8Array(Buffer.from('a/b')), 'a_b'], [new Uint8Array(Buffer.from('x\0y')), 'x_y'],
      [new Uint8Array([0x61, 0xff, 0x62]), 'a\ufffdb'], // not UTF-8: the byte replaced (U+FFFD)
    ];
    for (const [raw, want] of cases) {
      const b2 = new Uint8Array(raw.length + 9).fill(0x41);
      b2.set(raw, 5);
      expect(rripfntransAt(b2, 5, 5 + raw.length)).toBe(want);
      expect(rripfntrans(raw)).toBe(want);
    }
  });
});
