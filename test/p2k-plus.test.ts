// READDIRPLUS entries with and without their nodes (p2k/plus_policy.ts):
// directories always go with a node, other names bare (node id 0) until
// the host looks names of a bare answer up, then with their nodes, with a
// bare probe now and then. Whatever goes with a node must be what LOOKUP
// of the name answers: the same node id and the same attributes.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUSE_ROOT_ID } from '../p2k/fuse/abi.js';
import { DirentWriter, encodeAttr, type FuseAttr } from '../p2k/fuse/codec.js';
import { P2k } from '../p2k/p2k.js';
import { PlusPolicy } from '../p2k/plus_policy.js';
import '../src/fs/cd9660/index.js';
import '../src/fs/msdosfs/index.js';
import { blkdev_open, MNT_RDONLY, vfs_mount, type Mount } from '../src/kern/index.js';
import { fatOfTree } from './helpers/fat.js';

describe('PlusPolicy', () => {
  it('answers bare until names of a bare answer are looked up, then in full with a bare probe every 16 directories', () => {
    const p = new PlusPolicy();
    expect(p.begin(10, 0)).toBe(true);
    p.answeredBare(10, 'a');
    p.answeredBare(10, 'b');
    // A later batch of the same directory goes as the first did.
    expect(p.begin(10, 7)).toBe(true);
    // Nobody looked: the next directory is bare too.
    expect(p.begin(11, 0)).toBe(true);
    p.answeredBare(11, 'x');
    p.answeredBare(11, 'y');
    p.looked(11, 'unrelated');
    p.looked(12, 'x');
    expect(p.begin(11, 3)).toBe(true);
    p.looked(11, 'x');
    p.looked(11, 'y');
    // Two names of the bare answer looked up: the rest of that directory, and the next ones, in full.
    expect(p.begin(11, 5)).toBe(false);
    for (let d = 0; d < 15; d++) expect(p.begin(100 + d, 0)).toBe(false);
    // The 16th: a probe.
    expect(p.begin(200, 0)).toBe(true);
    p.answeredBare(200, 'f');
    p.looked(200, 'f');
    p.looked(200, 'f');
    // Looked up: full again, and the next probe after 32.
    for (let d = 0; d < 31; d++) expect(p.begin(300 + d, 0)).toBe(false);
    expect(p.begin(400, 0)).toBe(true);
    p.answeredBare(400, 'g');
    // Not looked up by the time the next directory is listed: bare again.
    expect(p.begin(401, 0)).toBe(true);
  });

  it('a probe of a directory holding only directories passes to the next directory', () => {
    const p = new PlusPolicy();
    p.begin(1, 0);
    p.answeredBare(1, 'a');
    p.looked(1, 'a');
    p.looked(1, 'a');
    for (let d = 0; d < 15; d++) expect(p.begin(100 + d, 0)).toBe(false);
    expect(p.begin(200, 0)).toBe(true); // nothing bare in it
    expect(p.begin(201, 0)).toBe(true);
    p.answeredBare(201, 'f');
    expect(p.begin(202, 0)).toBe(true); // 201's names not looked up: bare
  });
});

const req = { len: 0, opcode: 0, unique: 1, nodeid: 0, uid: 0, gid: 0, pid: 0 };
let tmp = '', src = '';

beforeAll(() => {
  tmp = mkdtempSync(path.join(tmpdir(), 'rumpfs-plus-'));
  src = path.join(tmp, 'src');
  for (const d of ['d1', 'd2', 'd3']) {
    mkdirSync(path.join(src, d, 'sub'), { recursive: true });
    for (let i = 0; i < 12; i++) writeFileSync(path.join(src, d, `File${i}.txt`), 'x'.repeat(i * 100));
  }
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function kmount(fstype: string, img: string, flags: number): Promise<Mount> {
  const dev = await blkdev_open(img, { readOnly: (flags & MNT_RDONLY) !== 0 });
  return vfs_mount(fstype, { dev, from: img, flags, options: {} });
}

interface Plus { name: string; nodeid: number; mode: number; attr: Buffer | null }

/** fuse_attr as it goes to the kernel. */
function attrBytes(a: FuseAttr): Buffer {
  const b = Buffer.alloc(88);
  encodeAttr(b, 0, a);
  return b;
}

/** READDIRPLUS of a whole directory. */
async function readdirplus(p: P2k, id: number): Promise<Plus[]> {
  const { fh } = await p.opendir(req, id);
  const out: Plus[] = [];
  let offset = 0;
  for (;;) {
    const w = new DirentWriter(4096, true);
    await p.readdir(req, id, fh, offset, w);
    if (w.count === 0) break;
    for (let at = 16; at < 16 + w.count;) {
      const nodeid = Number(w.buf.readBigUInt64LE(at));
      const d = at + 128;
      const len = w.buf.readUInt32LE(d + 16);
      offset = Number(w.buf.readBigUInt64LE(d + 8));
      const name = w.buf.toString('utf8', d + 24, d + 24 + len);
      out.push({ name, nodeid, mode: w.buf.readUInt32LE(d + 20) /* DT_* */, attr: nodeid ? Buffer.from(w.buf.subarray(at + 40, at + 128)) : null });
      at = (d + 24 + len + 7) & ~7;
    }
  }
  await p.releasedir(req, id, fh);
  return out;
}

const images: Record<string, { flags: number; make: () => string }> = {
  msdos: {
    flags: 0,
    make: () => fatOfTree(tmp, 4096, src),
  },
  cd9660: {
    flags: MNT_RDONLY,
    make: () => {
      const img = path.join(tmp, 'img.iso');
      execFileSync('genisoimage', ['-quiet', '-R', '-J', '-o', img, src], { stdio: 'pipe' });
      return img;
    },
  },
};

describe('READDIRPLUS through p2k', () => {
  for (const [fstype, im] of Object.entries(images)) {
    it(`${fstype}: bare files until looked up, then nodes that are LOOKUP's`, async () => {
      const mp = await kmount(fstype, im.make(), im.flags);
      const readOnly = (im.flags & MNT_RDONLY) !== 0;
      const p = new P2k(mp, { readOnly, groups: null, entryTimeout: 1, attrTimeout: 1, directIo: false, stableIds: readOnly });
      try {
        const root = await readdirplus(p, FUSE_ROOT_ID);
        const dirs = root.filter(e => e.name.startsWith('d'));
        expect(dirs.map(e => e.name).sort()).toEqual(['d1', 'd2', 'd3']);
        for (const d of dirs) {
          // Directories go with their nodes, and those are what LOOKUP gives.
          expect(d.nodeid).toBeGreaterThan(1);
          const e = await p.lookup(req, FUSE_ROOT_ID, d.name);
          expect(e.nodeid).toBe(d.nodeid);
          expect(d.attr).toEqual(attrBytes(e.attr));
        }
        // d1: files bare, `sub` with its node.
        const d1 = await readdirplus(p, dirs.find(e => e.name === 'd1')!.nodeid);
        const files1 = d1.filter(e => e.name.startsWith('File'));
        expect(files1).toHaveLength(12);
        for (const f of files1) {
          expect(f.nodeid).toBe(0);
          expect(f.mode).toBe(8); // DT_REG
        }
        expect(d1.find(e => e.name === 'sub')!.nodeid).toBeGreaterThan(1);
        // ls -l: every name of d1 looked up.
        const d1id = dirs.find(e => e.name === 'd1')!.nodeid;
        for (const f of files1) await p.lookup(req, d1id, f.name);
        // d2 now goes in full, each entry as LOOKUP answers it.
        const d2id = dirs.find(e => e.name === 'd2')!.nodeid;
        const d2 = await readdirplus(p, d2id);
        for (const f of d2.filter(e => e.name !== '.' && e.name !== '..')) {
          expect(f.nodeid).toBeGreaterThan(1);
          const e = await p.lookup(req, d2id, f.name);
          expect(e.nodeid).toBe(f.nodeid);
          expect(f.attr).toEqual(attrBytes(e.attr));
        }
      } finally {
        await p.shutdown();
      }
    });
  }
});
