// fs-utils judged by coreutils: each command's output against the same
// coreutils command on a copy of the image's tree extracted by the format's
// own tools (FAT: mcopy -s -m; ISO: xorriso -osirrox), and what the writing
// commands leave judged by fsck.fat -n and mtools.
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const top = path.resolve(import.meta.dirname, '..');
const dist = path.join(top, 'dist');
const dir = mkdtempSync(path.join(tmpdir(), 'rumpfs-fsu-'));
chmodSync(dir, 0o755); // nobody reads the images too
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// UV_USE_IO_URING=0 as the bin scripts' #! line sets it (else a command runs itself again with it).
const env = { ...process.env, LC_ALL: 'C', TZ: 'UTC', UV_USE_IO_URING: '0' };
const T = 1_600_000_000;

interface Run { stdout: string; stderr: string; status: number }
function run(cmd: string, args: string[], opts: { cwd?: string; input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const p = execFile(cmd, args, { cwd: opts.cwd, env: opts.env ?? env, encoding: 'utf8', maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
      resolve({ stdout, stderr, status: err ? (typeof err.code === 'number' ? err.code : 128) : 0 }));
    if (opts.input !== undefined) p.stdin!.end(opts.input);
  });
}
const fsu = (name: string, ...args: string[]) => run('node', [path.join(dist, 'scripts/fsu', `${name}.js`), ...args]);
/** The coreutils command in the extracted tree, its messages named like ours. */
async function coreutils(cwd: string, name: string, ...args: string[]): Promise<Run> {
  const r = await run(name, args, { cwd });
  return { ...r, stderr: r.stderr.replace(new RegExp(`^${name}:`, 'gm'), `fsu_${name}:`).replace(/[‘’]/g, "'") };
}

/** The source tree: nested directories, sizes around cluster and sector boundaries, a few names. */
function makeTree(root: string): void {
  const files: Record<string, number> = {
    'README.TXT': 100, 'a.txt': 3, 'empty': 0, 'Mixed Case.dat': 4097, 'sub/b.txt': 6, 'sub/big.bin': 300_000,
    'sub/deeper/c.bin': 5000, 'sub/deeper/z.txt': 2048, 'other/x.txt': 1,
  };
  for (const [f, n] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = (i * 31 + f.length) & 0xff;
    writeFileSync(path.join(root, f), b);
    utimesSync(path.join(root, f), T, T + 2 * f.length);
  }
}

const tree = path.join(dir, 'tree');
const fat = path.join(dir, 'fat.img');
const fatX = path.join(dir, 'fat-x');
const iso = path.join(dir, 'tree.iso');
const isoX = path.join(dir, 'iso-x');

function fatImage(file: string): void {
  writeFileSync(file, Buffer.alloc(0));
  execFileSync('truncate', ['-s', '16M', file]);
  execFileSync('mkfs.vfat', ['-F', '16', file], { stdio: 'ignore' });
}

beforeAll(() => {
  makeTree(tree);
  fatImage(fat);
  execFileSync('mcopy', ['-s', '-m', '-i', fat, ...['README.TXT', 'a.txt', 'empty', 'Mixed Case.dat', 'sub', 'other'].map(f => path.join(tree, f)), '::/'], { env });
  mkdirSync(fatX);
  execFileSync('mcopy', ['-s', '-m', '-n', '-i', fat, '::/*', fatX], { env });
  execFileSync('genisoimage', ['-quiet', '-R', '-o', iso, tree], { env });
  execFileSync('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', '/', isoX], { env, stdio: 'ignore' });
  chmodSync(isoX, 0o755);
});

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
  });

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
  });

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

describe('fs-utils write commands on msdos, judged by fsck.fat -n and mtools', () => {
  const img = path.join(dir, 'w.img');
  beforeAll(() => fatImage(img));
  const mdirNames = (p: string) => execFileSync('mdir', ['-b', '-i', img, `::${p}`], { env, encoding: 'utf8' }).split('\n').filter(Boolean).sort();
  const fsck = () => execFileSync('fsck.fat', ['-n', img], { encoding: 'utf8' });

  it('put, mkdir, write, cp, mv, touch, rm, rmdir, chmod; df', async () => {
    expect(await fsu('put', img, '-r', '-p', tree, '/')).toMatchObject({ status: 0, stderr: '' });
    const back = path.join(dir, 'put-back');
    mkdirSync(back);
    execFileSync('mcopy', ['-s', '-m', '-n', '-i', img, '::/tree', back], { env });
    expect((await run('diff', ['-r', tree, path.join(back, 'tree')])).status).toBe(0);
    expect(statSync(path.join(back, 'tree/sub/big.bin')).mtimeMs).toBe(statSync(path.join(tree, 'sub/big.bin')).mtimeMs);

    expect(await fsu('mkdir', img, '-p', '/n/e/s/t')).toEqual({ stdout: '', stderr: '', status: 0 });
    expect(await fsu('mkdir', img, '/n')).toEqual({ stdout: '', stderr: "fsu_mkdir: cannot create directory '/n': File exists\n", status: 1 });
    expect(await run('node', [path.join(dist, 'scripts/fsu/write.js'), img, '/n/w.txt'], { input: 'from stdin\n' })).toMatchObject({ status: 0 });
    expect(await run('node', [path.join(dist, 'scripts/fsu/write.js'), img, '-a', '/n/w.txt'], { input: 'more\n' })).toMatchObject({ status: 0 });
    expect(execFileSync('mtype', ['-i', img, '::/n/w.txt'], { env, encoding: 'utf8' })).toBe('from stdin\nmore\n');
    expect(await fsu('cp', img, '-r', '/tree/sub', '/n/copy')).toMatchObject({ status: 0, stderr: '' });
    expect(await fsu('cp', img, '/tree/sub', '/n/x')).toEqual({ stdout: '', stderr: "fsu_cp: -r not specified; omitting directory '/tree/sub'\n", status: 1 });
    expect(await fsu('mv', img, '/n/w.txt', '/n/e')).toMatchObject({ status: 0 });
    expect(await fsu('mv', img, '/nope', '/n')).toEqual({ stdout: '', stderr: "fsu_mv: cannot stat '/nope': No such file or directory\n", status: 1 });
    expect(await fsu('touch', img, '-d', '2021-06-01 12:00:00', '/n/new.txt', '/tree/a.txt')).toMatchObject({ status: 0, stderr: '' });
    expect(await fsu('rm', img, '/tree/sub')).toEqual({ stdout: '', stderr: "fsu_rm: cannot remove '/tree/sub': Is a directory\n", status: 1 });
    expect(await fsu('rm', img, '-r', '/tree/sub', '/tree/other/x.txt')).toEqual({ stdout: '', stderr: '', status: 0 });
    expect(await fsu('rm', img, '-f', '/nope')).toEqual({ stdout: '', stderr: '', status: 0 });
    expect(await fsu('rm', img, '/nope')).toEqual({ stdout: '', stderr: "fsu_rm: cannot remove '/nope': No such file or directory\n", status: 1 });
    expect(await fsu('rmdir', img, '/n/e')).toEqual({ stdout: '', stderr: "fsu_rmdir: failed to remove '/n/e': Directory not empty\n", status: 1 });
    expect(await fsu('rmdir', img, '/tree/other')).toEqual({ stdout: '', stderr: '', status: 0 });
    expect(await fsu('chmod', img, 'a-w', '/tree/a.txt')).toMatchObject({ status: 0, stderr: '' });
    expect(await fsu('ln', img, '-s', 'a.txt', '/tree/l')).toEqual({ stdout: '', stderr: "fsu_ln: failed to create symbolic link '/tree/l': Operation not permitted\n", status: 1 });
    expect(await fsu('chown', img, '1:1', '/tree/a.txt')).toMatchObject({ status: 1, stderr: "fsu_chown: changing ownership of '/tree/a.txt': Operation not permitted\n" });

    expect(fsck()).toMatch(/files?, /);
    expect(mdirNames('/tree')).toEqual(['::/tree/Mixed Case.dat', '::/tree/README.TXT', '::/tree/a.txt', '::/tree/empty']);
    expect(mdirNames('/n/copy')).toEqual(['::/n/copy/b.txt', '::/n/copy/big.bin', '::/n/copy/deeper/']);
    expect(mdirNames('/n/e')).toEqual(['::/n/e/s/', '::/n/e/w.txt']);
    expect(execFileSync('mattrib', ['-i', img, '::/tree/a.txt'], { env, encoding: 'utf8' })).toMatch(/^ *A? *R/);
    expect(execFileSync('mdir', ['-i', img, '::/n/new.txt'], { env, encoding: 'utf8' })).toMatch(/2021-06-01 +12:00/);

    const df = await fsu('df', img);
    const free = Number(/([\d ]+) bytes free/.exec(execFileSync('mdir', ['-i', img, '::/'], { env, encoding: 'utf8' }))![1].replace(/ /g, ''));
    const [, blocks, used, avail, pct] = df.stdout.split('\n')[1].split(/\s+/);
    expect(Number(avail)).toBe(free / 1024);
    expect(Number(used) + Number(avail)).toBe(Number(blocks));
    expect(pct).toBe(`${Math.ceil((Number(used) * 100) / Number(blocks))}%`);
  });

  it('ecp both ways', async () => {
    const back = path.join(dir, 'ecp-back');
    expect(await fsu('ecp', img, path.join(tree, 'sub/b.txt'), '/ecp.txt')).toMatchObject({ status: 0 });
    expect(await fsu('ecp', img, '-g', '/ecp.txt', back)).toMatchObject({ status: 0 });
    expect(readFileSync(back)).toEqual(readFileSync(path.join(tree, 'sub/b.txt')));
  });
});

describe('fs-utils: images, types, partitions, read-only, panics, the sandbox', () => {
  it('reading commands leave the image untouched; writing ones refuse a read-only format', async () => {
    const before = readFileSync(fat);
    await Promise.all([fsu('ls', fat, '-R'), fsu('cat', fat, 'a.txt'), fsu('find', fat), fsu('stat', fat, 'sub'), fsu('du', fat), fsu('df', fat)]);
    expect(readFileSync(fat).equals(before)).toBe(true);
    expect(await fsu('rm', iso, 'a.txt')).toEqual({ stdout: '', stderr: "fsu_rm: cannot remove 'a.txt': Read-only file system\n", status: 1 });
  });

  it('-t forces the type; a partition by image%part=N or -o part=N', async () => {
    expect(await fsu('ls', '-t', 'cd9660', fat)).toMatchObject({ status: 2, stdout: '' });
    expect((await fsu('ls', '-t', 'msdos', fat)).stdout).toContain('README.TXT');
    const disk = path.join(dir, 'disk.img');
    writeFileSync(disk, Buffer.alloc(0));
    execFileSync('truncate', ['-s', '20M', disk]);
    execFileSync('sfdisk', ['-q', disk], { input: 'start=2048, size=32768, type=c\n' });
    execFileSync('dd', [`if=${fat}`, `of=${disk}`, 'bs=512', 'seek=2048', 'conv=notrunc'], { stdio: 'ignore' });
    const whole = await fsu('ls', fat);
    expect(await fsu('ls', `${disk}%part=1`)).toEqual(whole);
    expect(await fsu('ls', '-o', 'part=1', disk)).toEqual(whole);
    const none = await fsu('ls', path.join(dir, 'nothere.img'));
    expect(none).toEqual({ stdout: '', stderr: `fsu_ls: ${path.join(dir, 'nothere.img')}: No such file or directory\n`, status: 2 });
  });

  it('a panic is "fsu_xxx: panic: ..." and status 70, no stack trace', async () => {
    const r = await run('node', [path.join(top, 'test/fixtures/fsu-probe.mjs'), fat, 'panic'], { env: { ...env, FSU_DIST: dist } });
    expect(r).toEqual({ stdout: '', stderr: 'fsu_probe: panic: probe: on purpose\n', status: 70 });
  });

  it('after the image is open: the sandbox (as root: nobody, no /etc); runs as nobody on an image it may read', async () => {
    // Started without UV_USE_IO_URING=0: it runs itself again with it.
    const r = await run('node', [path.join(top, 'test/fixtures/fsu-probe.mjs'), fat, 'probe'], { env: { ...process.env, FSU_DIST: dist } });
    const sandboxUser = (u: string) => { try { return Number(execFileSync('id', ['-u', u], { encoding: 'utf8' })); } catch { return undefined; } };
    const uid = process.getuid?.() === 0 ? sandboxUser('rumpfs') ?? sandboxUser('nobody') : process.getuid?.();
    expect(JSON.parse(r.stdout)).toEqual({ uid, passwd: 'EPERM', entries: 6 });
    const asNobody = await run('runuser', ['-u', 'nobody', '--', 'node', path.join(dist, 'scripts/fsu/ls.js'), fat, '-R']);
    expect(asNobody).toEqual(await fsu('ls', fat, '-R'));
    const denied = await run('runuser', ['-u', 'nobody', '--', 'node', path.join(dist, 'scripts/fsu/rm.js'), fat, 'a.txt']);
    expect(denied).toEqual({ stdout: '', stderr: `fsu_rm: ${fat}: Permission denied\n`, status: 1 });
  });

  it('fsu --help lists every command; fsu CMD runs fsu_CMD', async () => {
    const h = await run('node', [path.join(dist, 'scripts/fsu/fsu.js'), '--help']);
    for (const c of ['cat', 'chmod', 'chown', 'cp', 'df', 'du', 'ecp', 'find', 'get', 'ln', 'ls', 'mkdir', 'mv', 'put', 'rm', 'rmdir', 'stat', 'touch', 'write'])
      expect(h.stdout).toContain(`fsu_${c} `);
    const pkg = JSON.parse(readFileSync(path.join(top, 'package.json'), 'utf8'));
    expect(Object.keys(pkg.bin).filter(b => b.startsWith('fsu')).length).toBe(20);
    expect(await run('node', [path.join(dist, 'scripts/fsu/fsu.js'), 'ls', fat, 'sub'])).toEqual(await fsu('ls', fat, 'sub'));
  });
});
