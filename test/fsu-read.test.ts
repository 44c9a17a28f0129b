// fs-utils' reading commands judged by coreutils: each command's output
// against the same coreutils command on the tree the format's own tools
// extract from the image (FAT: mcopy -s -m; ISO: xorriso -osirrox).
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { coreutils, fixture, fsu, run, type Run } from './helpers/fsu.js';

const { dir, fat, fatX, iso, isoX, cleanup } = fixture();
afterAll(cleanup);

/** ls -l without what the host's own file system decides (total blocks; for FAT, modes, links and directory times). */
function longFields(out: string, keep: (f: string[]) => string[]): string[] {
  return out.split('\n').filter(l => l && !l.startsWith('total ')).map(l => {
    const f = l.split(/\s+/);
    return f.length < 9 ? l : keep(f).join(' ');
  });
}

describe.each([
  ['msdos', () => fat, () => fatX],
  ['cd9660', () => iso, () => isoX],
])('fs-utils read commands on %s match coreutils on the extracted tree', (type, img, x) => {
  it('ls, -a, -A, -R, -1, -d, several operands', async () => {
    for (const args of [['-a'], ['-A', '-R'], ['-1', 'sub'], ['-d', 'sub', 'other'], ['sub', 'a.txt', 'other/x.txt']]) {
      const [ours, theirs] = await Promise.all([fsu('ls', img(), ...args), coreutils(x(), 'ls', ...args)]);
      expect(ours, args.join(' ')).toEqual(theirs);
    }
  }, 120_000);

  it('ls -l, -lh, -li, errors', async () => {
    const [l, cl, lh, clh, li, miss, cmiss] = await Promise.all([
      fsu('ls', img(), '-lR'), coreutils(x(), 'ls', '-lR'), fsu('ls', img(), '-lh', 'sub'), coreutils(x(), 'ls', '-lh', 'sub'),
      fsu('ls', img(), '-li', 'sub'), fsu('ls', img(), 'nope', 'a.txt'), coreutils(x(), 'ls', 'nope', 'a.txt')]);
    // FAT: files only (mcopy extracts with the host's modes; directory times are the extraction's).
    // Directory sizes are the format's own (ISO: 2048, the host's: 4096).
    const keep = type === 'msdos' ? (f: string[]) => (f[0].startsWith('-') ? [f[4], f[5], f[6], f[7], f[8]] : [f[8]])
      : (f: string[]) => (f[0].startsWith('d') ? [...f.slice(0, 4), ...f.slice(5)] : f);
    expect(l.status).toBe(0);
    expect(longFields(l.stdout, keep)).toEqual(longFields(cl.stdout, keep));
    const fileSizes = (f: string[]) => (f[0].startsWith('-') ? [f[4], f[8]] : [f[8]]);
    expect(longFields(lh.stdout, fileSizes)).toEqual(longFields(clh.stdout, fileSizes));
    expect(li.stdout.split('\n').filter(s => s && !s.startsWith('total')).map(s => s.replace(/^\s*\d+ /, 'N ').split(/\s+/).slice(0, 1).concat(s.split(/\s+/).slice(-1))))
      .toEqual(clh.stdout.split('\n').filter(s => s && !s.startsWith('total')).map(s => ['N', s.split(/\s+/).pop()]));
    expect(miss).toEqual(cmiss);
    expect(miss.status).toBe(2);
  });

  it('cat, stat -c, find, du -ab', async () => {
    const statFmt = type === 'msdos' ? '%n %s %F %Y' : '%n %s %F %Y %a %U %G %h';
    const files = ['a.txt', 'empty', 'Mixed Case.dat', 'sub/big.bin', 'sub/deeper/c.bin'];
    const [cat, ccat, st, cst, catErr, ccatErr, stErr, cstErr] = await Promise.all([
      fsu('cat', img(), ...files), coreutils(x(), 'cat', ...files),
      fsu('stat', img(), '-c', statFmt, ...files), coreutils(x(), 'stat', '-c', statFmt, ...files),
      fsu('cat', img(), 'a.txt', 'nope', 'sub'), coreutils(x(), 'cat', 'a.txt', 'nope', 'sub'),
      fsu('stat', img(), 'nope'), coreutils(x(), 'stat', 'nope'),
    ]);
    expect(cat).toEqual(ccat);
    expect(cat.stdout.length).toBeGreaterThan(300_000);
    expect(st).toEqual(cst);
    expect(catErr).toEqual(ccatErr);
    expect(catErr.status).toBe(1);
    expect(stErr).toEqual(cstErr);
    const sorted = (r: Run, sep = '\n') => r.stdout.split(sep).filter(Boolean).sort();
    for (const args of [['.', '-name', '*.txt', '-type', 'f'], ['sub', '-type', 'd'], ['.', '-size', '+2k', '-iname', '*I*'], ['nope']]) {
      const [f, cf] = await Promise.all([fsu('find', img(), ...args), coreutils(x(), 'find', ...args)]);
      expect(sorted(f), args.join(' ')).toEqual(sorted(cf));
      expect([f.status, f.stderr]).toEqual([cf.status, cf.stderr]);
    }
    const [p0, cp0] = await Promise.all([fsu('find', img(), '.', '-type', 'f', '-print0'), coreutils(x(), 'find', '.', '-type', 'f', '-print0')]);
    expect(sorted(p0, '\0')).toEqual(sorted(cp0, '\0'));
    const [du, cdu] = await Promise.all([fsu('du', img(), '-ab', 'sub'), coreutils(x(), 'du', '-ab', 'sub')]);
    const filesOnly = (r: Run) => r.stdout.split('\n').filter(l => /\.(bin|txt)$/.test(l)).sort();
    expect(filesOnly(du)).toEqual(filesOnly(cdu));
    expect(filesOnly(du).length).toBe(4);
  }, 120_000);

  it('get -r -p gives the extracted tree (bytes and file times)', async () => {
    const out = path.join(dir, `get-${type}`);
    mkdirSync(out);
    const r = await fsu('get', img(), '-r', '-p', 'sub', 'a.txt', out);
    expect(r).toEqual({ stdout: '', stderr: '', status: 0 });
    expect((await run('diff', ['-r', path.join(x(), 'sub'), path.join(out, 'sub')])).status).toBe(0);
    expect(statSync(path.join(out, 'sub/big.bin')).mtimeMs).toBe(statSync(path.join(x(), 'sub/big.bin')).mtimeMs);
    expect(readFileSync(path.join(out, 'a.txt'))).toEqual(readFileSync(path.join(x(), 'a.txt')));
  });
});

