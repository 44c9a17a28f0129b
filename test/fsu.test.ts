// fs-utils' writing commands judged by fsck.fat -n and mtools; images,
// types, partitions, read-only formats, panics, the sandbox, fsu --help.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dist, env, fatImage, fixture, fsu, run, top } from './helpers/fsu.js';

const { dir, tree, fat, iso, cleanup } = fixture();
afterAll(cleanup);

describe('fs-utils write commands on msdos, judged by fsck.fat -n and mtools', () => {
  const img = path.join(dir, 'w.img');
  beforeAll(() => fatImage(img));
  const mdirNames = (p: string) => execFileSync('mdir', ['-b', '-i', img, `::${p}`], { env, encoding: 'utf8' }).split('\n').filter(Boolean).sort();
  const fsck = () => execFileSync('fsck.fat', ['-n', img], { encoding: 'utf8' });

  it('put -r -p: mcopy reads the tree back, times kept', async () => {
    expect(await fsu('put', img, '-r', '-p', tree, '/')).toMatchObject({ status: 0, stderr: '' });
    const back = path.join(dir, 'put-back');
    mkdirSync(back);
    execFileSync('mcopy', ['-s', '-m', '-n', '-i', img, '::/tree', back], { env });
    expect((await run('diff', ['-r', tree, path.join(back, 'tree')])).status).toBe(0);
    expect(statSync(path.join(back, 'tree/sub/big.bin')).mtimeMs).toBe(statSync(path.join(tree, 'sub/big.bin')).mtimeMs);
  });

  it('mkdir, write, cp, mv, touch, rm, rmdir, chmod, ln, chown: messages as coreutils; fsck.fat clean, mtools agrees', async () => {

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
    expect(await fsu('touch', img, '-c', '/n/absent')).toEqual({ stdout: '', stderr: '', status: 0 });
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
    expect(mdirNames('/n')).not.toContain('::/n/absent');
    expect(execFileSync('mattrib', ['-i', img, '::/tree/a.txt'], { env, encoding: 'utf8' })).toMatch(/^ *A? *R/);
    expect(execFileSync('mdir', ['-i', img, '::/n/new.txt'], { env, encoding: 'utf8' })).toMatch(/2021-06-01 +12:00/);
  }, 180_000);

  it('df matches what mdir counts free', async () => {

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

  it('corrupt images: an errno message and status, never a stack trace or a hang', async () => {
    // The FATs and root directory of a copy overwritten with seeded garbage.
    let x = 12345;
    const rnd = () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x; };
    const checked: string[] = [];
    for (let i = 0; i < 3; i++) {
      const img = readFileSync(fat);
      for (let k = 0; k < 400; k++) img[512 + (rnd() % (64 * 1024))] = rnd() & 0xff;
      const bad = path.join(dir, `bad-${i}.img`);
      writeFileSync(bad, img);
      checked.push(bad);
    }
    // And a subdirectory whose '.' entry got another name: a directory that contains itself.
    const looped = readFileSync(fat);
    const dot = looped.indexOf(Buffer.from('.          \x10', 'latin1'));
    expect(looped.subarray(dot + 32, dot + 43).toString('latin1')).toBe('..         ');
    looped[dot + 1] = 3;
    checked.push(path.join(dir, 'looped.img'));
    writeFileSync(checked[3], looped);
    for (const bad of checked) {
      for (const r of await Promise.all([fsu('ls', bad, '-laR'), fsu('find', bad), fsu('du', bad), fsu('cat', bad, 'sub/big.bin', 'README.TXT')])) {
        expect([0, 1, 2]).toContain(r.status);
        for (const line of r.stderr.split('\n').filter(Boolean)) expect(line).toMatch(/^fsu_(ls|find|du|cat): /);
        expect(r.stderr).not.toMatch(/\n\s+at /);
      }
    }
    const [ls, find, du] = await Promise.all([fsu('ls', checked[3], '-aR'), fsu('find', checked[3]), fsu('du', checked[3])]);
    expect([ls.status, ls.stderr]).toEqual([2, expect.stringMatching(/^fsu_ls: .*: not listing already-listed directory$/m)]);
    expect([find.status, find.stderr]).toEqual([1, expect.stringMatching(/^fsu_find: File system loop detected; /m)]);
    expect([du.status, du.stderr]).toEqual([1, expect.stringMatching(/^fsu_du: WARNING: Circular directory structure/m)]);
  }, 120_000);

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
