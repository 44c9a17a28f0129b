// The fuzzer: its mutator is deterministic and aims where it says (judged
// by fsck.fat and isoinfo), its classifier names a panicking or looping
// worker correctly (with a fake target, independent of driver bugs), and a
// short real campaign prints a well-formed table and the right exit code.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lane, loadSeeds, mutantSpec } from '../scripts/fuzz/campaign.js';
import { CLASSES, classify } from '../scripts/fuzz/classify.js';
import { defaultLimits, type Job } from '../scripts/fuzz/exercise.js';
import { writeMutant, type Region } from '../scripts/fuzz/mutate.js';
import { MountRunner } from '../scripts/fuzz/mountmode.js';
import { WorkerSlot } from '../scripts/fuzz/pool.js';
import { targets } from '../scripts/fuzz/targets.js';

const repo = path.resolve(import.meta.dirname, '..');
const fuzzJs = path.join(repo, 'dist/scripts/fuzz.js');
const workerJs = path.join(repo, 'dist/scripts/fuzz/worker.js');

let tmp: string;
beforeAll(() => {
  if (!existsSync(fuzzJs)) throw new Error('dist/scripts/fuzz.js is missing: build first (npm test does, or npx tsc -p .)');
  tmp = mkdtempSync(path.join(os.tmpdir(), 'rumpfs-fuzz-test-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const inRegion = (r: Region, off: number, len: number) => r.ranges.some(x => off >= x.start && off + len <= x.end);

describe('mutator', () => {
  it('makes the same mutant from the same identity, and different ones otherwise', () => {
    const seeds = loadSeeds(targets.msdos, tmp);
    const a = mutantSpec(targets.msdos, seeds, 'inprocess', 7, 42);
    const b = mutantSpec(targets.msdos, seeds, 'inprocess', 7, 42);
    expect(b).toEqual(a);
    expect(a.patches.length).toBeGreaterThan(0);
    const others = [mutantSpec(targets.msdos, seeds, 'inprocess', 8, 42), mutantSpec(targets.msdos, seeds, 'inprocess', 7, 45)];
    for (const o of others) expect(o.patches).not.toEqual(a.patches);
  });

  it('writes exactly the patched bytes into a copy of the seed', async () => {
    const seeds = loadSeeds(targets.cd9660, tmp);
    const spec = mutantSpec(targets.cd9660, seeds, 'inprocess', 1, 3);
    const out = path.join(tmp, 'mutant.img');
    await writeMutant(spec.seedPath, spec.patches, out);
    const seed = readFileSync(spec.seedPath), mutant = readFileSync(out);
    expect(mutant.length).toBe(seed.length);
    const expected = Buffer.from(seed);
    for (const p of spec.patches) expected.set(p.bytes, p.offset);
    expect(mutant.equals(expected)).toBe(true);
  });

  it('finds the FAT regions where fsck.fat says they are, and aims inside them', () => {
    for (const seed of loadSeeds(targets.msdos, tmp)) {
      const v = execFileSync('fsck.fat', ['-v', '-n', seed.path]).toString();
      const num = (re: RegExp) => Number(re.exec(v)![1]);
      const fatStart = num(/First FAT starts at byte (\d+)/);
      const dataStart = num(/Data area starts at byte (\d+)/);
      const byName = Object.fromEntries(seed.regions.map(r => [r.name, r]));
      expect(byName.fat.ranges[0].start, seed.name).toBe(fatStart);
      if (seed.name !== 'fat32') {
        expect(byName['root-dir'].ranges).toEqual([{ start: num(/Root directory starts at byte (\d+)/), end: dataStart }]);
      }
      // Subdirectories (docs, many, a, ...) lie in the data area; the root holds README.TXT's short entry.
      expect(byName.dirs.ranges.length).toBeGreaterThanOrEqual(13);
      for (const r of byName.dirs.ranges) expect(r.start).toBeGreaterThanOrEqual(dataStart);
      const root = byName['root-dir'].ranges.map(r => seed.image.subarray(r.start, r.end).toString()).join('');
      expect(root).toContain('README  TXT');

      for (let i = 0; i < 300; i++) {
        for (const p of mutantSpec(targets.msdos, [seed], 'inprocess', 1, i).patches) {
          const region = p.region === 'anywhere' ? { name: p.region, weight: 1, ranges: [{ start: 0, end: seed.image.length }] } : byName[p.region];
          expect(region, p.region).toBeDefined();
          expect(inRegion(region, p.offset, p.bytes.length), `${seed.name} ${JSON.stringify(p)}`).toBe(true);
        }
      }
    }
  });

  it('finds the ISO regions where isoinfo says they are, and aims mostly there', () => {
    for (const seed of loadSeeds(targets.cd9660, tmp)) {
      const byName = Object.fromEntries(seed.regions.map(r => [r.name, r]));
      expect(seed.image.subarray(byName['volume-descriptors'].ranges[0].start + 1).subarray(0, 5).toString()).toBe('CD001');
      // Every directory extent isoinfo lists is a root or directory region.
      const listing = execFileSync('isoinfo', ['-l', '-i', seed.path]).toString();
      const dirExtents = [...listing.matchAll(/^d.*\[\s*(\d+) 02\]/gm)].map(m => Number(m[1]) * 2048);
      expect(dirExtents.length).toBeGreaterThan(10);
      const dirRegions = { name: 'dirs', weight: 1, ranges: [...byName['root-dir'].ranges, ...byName.dirs.ranges] };
      for (const off of dirExtents) expect(inRegion(dirRegions, off, 1), `extent at ${off}`).toBe(true);
      // The first record of the (little-endian) path table is the root directory, at the extent isoinfo shows for '/'.
      const rootExtent = Number(/Directory listing of \/\n.*\[\s*(\d+) 02\]/.exec(listing)![1]);
      expect(seed.image.readUInt32LE(byName['path-tables'].ranges[0].start + 2)).toBe(rootExtent);
      expect(byName.susp.ranges.length > 0).toBe(seed.name === 'rr-joliet');

      let aimed = 0, all = 0;
      for (let i = 0; i < 300; i++) {
        for (const p of mutantSpec(targets.cd9660, [seed], 'inprocess', 1, i).patches) {
          all++;
          if (p.region === 'anywhere') continue;
          aimed++;
          expect(inRegion(byName[p.region], p.offset, p.bytes.length), `${seed.name} ${JSON.stringify(p)}`).toBe(true);
        }
      }
      expect(aimed / all).toBeGreaterThan(0.8);
    }
  });

  it('finds the UDF regions where udfinfo says they are, and aims inside them', () => {
    for (const seed of loadSeeds(targets.udf, tmp)) {
      const byName = Object.fromEntries(seed.regions.map(r => [r.name, r]));
      const info = execFileSync('udfinfo', [seed.path]).toString();
      const bs = Number(/^blocksize=(\d+)/m.exec(info)![1]);
      // Each anchor and the first sector of both volume descriptor sequences, where udfinfo places them.
      for (const m of info.matchAll(/^start=(\d+), blocks=\d+, type=(ANCHOR|MVDS|RVDS)/gm)) {
        const region = m[2] === 'ANCHOR' ? byName.anchors : byName['volume-descriptors'];
        expect(inRegion(region, Number(m[1]) * bs, bs), `${seed.name} ${m[0]}`).toBe(true);
      }
      expect(byName['file-set'].ranges.length, seed.name).toBeGreaterThanOrEqual(1);
      expect(byName['file-entries'].ranges.length, seed.name).toBeGreaterThanOrEqual(1);
      for (let i = 0; i < 200; i++) {
        for (const p of mutantSpec(targets.udf, [seed], 'inprocess', 1, i).patches) {
          if (p.region === 'anywhere') continue;
          expect(inRegion(byName[p.region], p.offset, p.bytes.length), `${seed.name} ${JSON.stringify(p)}`).toBe(true);
        }
      }
    }
  });
});

describe('worker pool and classifier (fake target)', () => {
  // A target that misbehaves as the job's image path says.
  const fake = `
    export async function exercise(job, ctx) {
      const what = job.image;
      ctx.step('mount');
      if (what === 'panic') { process.stderr.write('panic: fake invariant broken\\n'); process.abort(); }
      if (what === 'abort') process.abort();
      if (what === 'exit') process.exit(3);
      ctx.step('readdir /');
      if (what === 'loop') for (;;) {}
      if (what === 'stall') await new Promise(() => {});
      const res = { mounted: what !== 'refuse', errors: [], entries: 1, bytes: 0, notes: [], clean: true };
      if (what === 'refuse') res.refusal = { step: 'mount', code: 'EINVAL', message: 'EINVAL: bad superblock' };
      if (what === 'eio') res.errors.push({ step: 'read /x', code: 'EIO', message: 'EIO: i/o error' });
      if (what === 'typeerror') res.crash = { step: 'lstat /x', message: 'TypeError: x is undefined', stack: 'TypeError: x is undefined\\n    at driver' };
      return res;
    }`;
  let slot: WorkerSlot;
  beforeAll(() => {
    const target = path.join(tmp, 'fake-target.mjs');
    writeFileSync(target, fake);
    slot = new WorkerSlot({ workerPath: workerJs, args: ['--target', target], cwd: tmp, timeoutMs: 2500 });
  });
  afterAll(() => slot.close());
  const job = (image: string): Job => ({ mode: 'inprocess', mountType: 'fake', image, readWrite: false, limits: defaultLimits });
  const run = async (image: string) => classify(await slot.run(job(image)), []);

  it('classifies what a worker reports', async () => {
    expect((await run('ok')).class).toBe('served');
    expect((await run('refuse'))).toMatchObject({ class: 'refused', message: 'EINVAL: bad superblock' });
    expect((await run('eio')).class).toBe('served-with-errors');
    expect((await run('typeerror'))).toMatchObject({ class: 'crash', step: 'lstat /x', stack: expect.stringContaining('at driver') });
  });

  it('an aborting worker with a panic line is panic-contained; without one, or any other death, a crash', async () => {
    expect(await run('panic')).toMatchObject({ class: 'panic-contained', step: 'mount', message: 'panic: fake invariant broken' });
    expect(await run('abort')).toMatchObject({ class: 'crash', step: 'mount' });
    expect((await run('exit')).message).toContain('exited with status 3');
    expect((await run('ok')).class).toBe('served'); // a fresh worker took over
  });

  it('a looping or stalled step is a hang within the timeout, and the slot goes on', async () => {
    for (const what of ['loop', 'stall']) {
      const t = Date.now();
      expect(await run(what)).toMatchObject({ class: 'hang', step: 'readdir /' });
      expect(Date.now() - t).toBeLessThan(8000);
    }
    expect((await run('ok')).class).toBe('served');
  });

  it('anything changed beside the image is an escape, whatever the run says', async () => {
    expect(classify(await slot.run(job('ok')), ['canary changed'])).toMatchObject({ class: 'escape', message: 'canary changed' });
  });
});

describe('campaign', () => {
  it('a quick in-process campaign prints a well-formed table and exits by its uncontained count', () => {
    const out = path.join(tmp, 'out'), json = path.join(tmp, 'quick.json');
    const r = spawnSync(process.execPath, [fuzzJs, '--quick', '--mode', 'inprocess', '--out', out, '--json', json], { encoding: 'utf8', timeout: 120_000 });
    const lines = r.stdout.split('\n');
    const head = lines.findIndex(l => l.startsWith('fs '));
    expect(lines[head].trim().split(/\s+/), r.stdout + r.stderr).toEqual(['fs', 'mutants', ...CLASSES]);
    const report = JSON.parse(readFileSync(json, 'utf8')) as { uncontained: number; filesystems: { fs: string; mutants: number; counts: Record<string, number>; kept: { replay: string; file: string }[] }[] };
    expect(report.filesystems.map(f => f.fs)).toEqual(Object.keys(targets));
    report.filesystems.forEach((f, i) => {
      const cells = lines[head + 1 + i].trim().split(/\s+/);
      expect(cells[0]).toBe(f.fs);
      expect(cells.slice(1).map(Number)).toEqual([f.mutants, ...CLASSES.map(c => f.counts[c])]);
      expect(Object.values(f.counts).reduce((a, b) => a + b, 0)).toBe(f.mutants);
      for (const k of f.kept) expect(existsSync(k.file) && r.stdout.includes(k.replay)).toBe(true);
    });
    expect(r.status).toBe(report.uncontained === 0 ? 0 : 1);
  });

  it('replays a mutant from its saved description', () => {
    const seeds = loadSeeds(targets.cd9660, tmp);
    const file = path.join(tmp, 'one.json');
    writeFileSync(file, JSON.stringify(mutantSpec(targets.cd9660, seeds, 'inprocess', 1, 0)));
    const r = spawnSync(process.execPath, [fuzzJs, '--replay', file], { encoding: 'utf8', timeout: 60_000 });
    const cls = /^outcome: (\S+)$/m.exec(r.stdout)?.[1];
    expect(CLASSES, r.stdout + r.stderr).toContain(cls);
    expect(r.status).toBe(['hang', 'escape', 'crash'].includes(cls!) ? 1 : 0);
  });

  it('mount mode mounts with the real server, walks and writes through the mount, unmounts, checks the canaries', async () => {
    // rump_tmpfs ignores its source, so the pipeline runs without depending on an image driver.
    const t = { ...targets.msdos, fs: 'tmpfs', mountType: 'tmpfs', readWrite: true };
    MountRunner.check(repo, t);
    const base = mkdtempSync(path.join(tmp, 'mount-'));
    const [runner] = await MountRunner.setup(repo, base, 1, 10_000, workerJs);
    try {
      const lane = new Lane(base, 'lane');
      const outcome = await runner.run(lane, t, defaultLimits);
      expect(outcome, JSON.stringify(outcome)).toMatchObject({ class: 'served', message: '0 entries, 0 bytes' });
      expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(path.join(base, 'mnt0'));
    } finally {
      await runner.close();
    }
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(base);
  });

  it('mount mode: a server that panics is contained (ENOTCONN, umount cleans up)', async () => {
    const t = { ...targets.msdos, fs: 'tmpfs', mountType: 'tmpfs', readWrite: true };
    const base = mkdtempSync(path.join(tmp, 'panic-'));
    const [runner] = await MountRunner.setup(repo, base, 1, 10_000, workerJs);
    // The server inherits this: its first directory listing panics.
    process.env.RUMPFS_FAULT = 'panic:VOP_READDIR:1';
    try {
      const outcome = await runner.run(new Lane(base, 'lane'), t, defaultLimits);
      expect(outcome, JSON.stringify(outcome)).toMatchObject({ class: 'panic-contained' });
    } finally {
      delete process.env.RUMPFS_FAULT;
      await runner.close();
    }
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(base);
  });

  it('mount mode refuses clearly when a server is missing', () => {
    const t = { ...targets.msdos, fs: 'nosuchfs', mountType: 'nosuchfs' };
    expect(() => MountRunner.check(repo, t)).toThrow(/no server for nosuchfs: .*dist\/servers\/rump_nosuchfs\.js does not exist/);
    const r = spawnSync(process.execPath, [fuzzJs, '--mode', 'mount', '--fs', 'nosuchfs'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown file system 'nosuchfs'/);
  });
});
