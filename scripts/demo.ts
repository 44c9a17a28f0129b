#!/usr/bin/env node
// npm start: a tour of rump_msdos. Make a small FAT image (or take the one
// given), mount it with rump_msdos, show that the process serving it holds no
// privilege, list and write through the mount, unmount, and let fsck.fat judge.
//   npm start [-- IMAGE [--rw] [-o OPTIONS]]   a given image is mounted read-only unless --rw
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SERVER = path.join(path.dirname(fileURLToPath(import.meta.url)), '../servers/rump_msdos.js');
const root = process.geteuid?.() === 0;
// mkfs.vfat and fsck.fat live in sbin, which an ordinary user's PATH may lack.
const env = { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin`, MTOOLS_SKIP_CHECK: '1', LC_ALL: 'C.UTF-8' };

function usage(msg: string): never {
  console.error(`demo: ${msg}\nusage: npm start [-- IMAGE [--rw] [-o OPTIONS]]`);
  process.exit(1);
}

let given: string | null = null, rw = false, extra: string[] = [];
for (let args = process.argv.slice(2); args.length > 0;) {
  const a = args.shift()!;
  if (a === '--rw') rw = true;
  else if (a === '-o' && args.length > 0) extra = ['-o', args.shift()!];
  else if (a.startsWith('-') || given !== null) usage(`unexpected argument ${a}`);
  else given = path.resolve(a);
}
if (given !== null && !existsSync(given)) usage(`${given}: no such file`);

const step = (n: number, what: string) => console.log(`\n${n}. ${what}`);
const say = (s = '') => console.log(s ? `   ${s}` : '');

/** Run a tool; on failure, stop the tour with its message. */
function tool(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { env, encoding: 'utf8' });
  if (r.error) throw new Error(`${cmd}: ${r.error.message} (is it installed? npm start runs scripts/setup as root to install it)`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}\n${r.stderr.trim()}`);
  return r.stdout;
}

function makeImage(img: string): void {
  tool('mkfs.vfat', ['-C', '-F', '16', '-n', 'RUMPDEMO', img, String(32 * 1024)]);
  const src = mkdtempSync(path.join(tmpdir(), 'rumpfs-demo-src-'));
  try {
    const put = (p: string, data: string | Buffer) => {
      mkdirSync(path.dirname(path.join(src, p)), { recursive: true });
      writeFileSync(path.join(src, p), data);
    };
    put('README.TXT', 'This stick was made by mkfs.vfat and filled by mtools.\n');
    put('Documents/Reisepläne für den Sommer.txt', 'Lisboa, Porto, Coimbra.\n');
    put('Documents/日本語のファイル名.txt', 'こんにちは\n');
    put('Photos/Holidays by the sea/IMG_0001.JPG', Buffer.alloc(300_000, 0xd8));
    put('Photos/Holidays by the sea/IMG_0002.JPG', Buffer.alloc(250_000, 0xe0));
    mkdirSync(path.join(src, 'Empty Folder'));
    tool('mcopy', ['-s', '-i', img, ...readdirSync(src).map(n => path.join(src, n)), '::']);
  } finally {
    rmSync(src, { recursive: true, force: true });
  }
}

/** The server's process: its command line names the script and the mount point (the launcher has exited). */
function serverPid(mp: string): number {
  for (const name of readdirSync('/proc').filter(n => /^\d+$/.test(n))) {
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (argv.includes(SERVER) && argv.includes(mp) && !gone(Number(name))) return Number(name);
    } catch { /* gone meanwhile */ }
  }
  throw new Error(`no rump_msdos process serves ${mp}`);
}

function gone(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').startsWith('Z');
  } catch {
    return true;
  }
}

/** uid or gid -> name, from /etc/passwd or /etc/group. */
function nameOf(file: string, id: string): string {
  const line = readFileSync(file, 'utf8').split('\n').find(l => l.split(':')[2] === id);
  return line ? line.split(':')[0] : '?';
}

function showPrivileges(pid: number): void {
  const status = Object.fromEntries(readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')
    .map(l => l.split(':\t')).filter(kv => kv.length === 2).map(([k, v]) => [k, v.trim()]));
  const [uid] = status.Uid.split(/\s+/), [gid] = status.Gid.split(/\s+/);
  say(`user          ${nameOf('/etc/passwd', uid).replace('?', 'a uid of its own, in no other process')} (uid ${status.Uid.replace(/\s+/g, ' ')}; real, effective, saved, fs)`);
  say(`group         ${nameOf('/etc/group', gid)} (gid ${status.Gid.replace(/\s+/g, ' ')}); supplementary groups: ${status.Groups ? status.Groups.split(/\s+/).map(g => `${nameOf('/etc/group', g)} (${g})`).join(', ') : 'none'}`);
  say(`capabilities  CapEff ${status.CapEff}${/^0+$/.test(status.CapEff) ? ' (none)' : ''}`);
  say(`NoNewPrivs    ${status.NoNewPrivs}${status.NoNewPrivs === '1' ? ' (setuid programs give it nothing)' : ''}`);
  say(`Seccomp       ${status.Seccomp}${status.Seccomp === '2' ? ' (a system-call filter: no open, exec, socket, mount)' : ''}`);
  let rootDir: string;
  try {
    rootDir = readlinkSync(`/proc/${pid}/root`);
  } catch (e) {
    rootDir = `(${(e as Error).message})`;
  }
  if (rootDir === '/') {
    say('root dir      / (only root can chroot the server; as an ordinary user the seccomp filter is what confines it)');
  } else {
    const inside = readdirSync(`/proc/${pid}/root`);
    say(`root dir      ${rootDir}: chrooted, ${inside.length === 0 ? 'an empty directory' : `holding ${inside.join(', ')}`}`);
  }
  try {
    if (readlinkSync(`/proc/${pid}/ns/net`) !== readlinkSync('/proc/self/ns/net')) say('network       a namespace of its own, with no interfaces');
  } catch { /* not ours to see */ }
}

/** The tree under dir, as ls -R would show it, with sizes. */
function listTree(dir: string, indent = '   '): void {
  for (const name of readdirSync(dir).sort()) {
    const st = statSync(path.join(dir, name));
    console.log(`${indent}${st.isDirectory() ? `${name}/` : `${name}  (${st.size.toLocaleString('en')} bytes)`}`);
    if (st.isDirectory()) listTree(path.join(dir, name), indent + '    ');
  }
}

async function waitGone(pid: number): Promise<void> {
  for (const end = Date.now() + 15_000; !gone(pid);) {
    if (Date.now() > end) throw new Error(`the server (pid ${pid}) did not exit after unmount`);
    await new Promise(r => setTimeout(r, 20));
  }
}

const work = mkdtempSync(path.join(tmpdir(), 'rumpfs-demo-'));
const mp = path.join(work, 'mnt');
mkdirSync(mp);
let mounted = false;
let failed = false;
try {
  console.log('rumpfs demo: a FAT file system served by an unprivileged, sandboxed process through FUSE');
  const img = given ?? path.join(work, 'stick.img');
  const writable = given === null || rw;
  step(1, 'The image');
  if (given === null) {
    makeImage(img);
    say(`${img}: 32 MiB FAT16, made by mkfs.vfat and filled by mtools`);
  } else {
    say(`${img}${writable ? '' : ' (mounted read-only: pass --rw to write to it)'}`);
  }

  step(2, 'Mount it');
  const args = [...(writable ? [] : ['-o', 'ro']), ...extra, img, mp];
  say(`$ rump_msdos ${args.join(' ')}`);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [SERVER, ...args], { env, encoding: 'utf8' });
  if (r.status !== 0) {
    const why = r.stderr.trim() || `exit ${r.status}`;
    const hint = !existsSync('/dev/fuse') ? 'this machine has no /dev/fuse (load the fuse module, or run in a container with --device /dev/fuse)'
      : root ? '' : 'as an ordinary user, fusermount3 (package fuse3) must be installed and /dev/fuse usable by you';
    throw new Error(`${why}${hint ? `\n   ${hint}` : ''}`);
  }
  mounted = true;
  const line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find(l => l.split(' ')[4] === mp)!;
  const [fstype, source] = line.split(' - ')[1].split(' ');
  say(`mounted in ${Date.now() - t0} ms: ${source} on ${mp} type ${fstype} (${line.split(' ')[5]})`);

  const pid = serverPid(mp);
  step(3, `The server, pid ${pid}, as /proc/${pid} shows it`);
  showPrivileges(pid);

  step(4, 'Through the mount');
  listTree(mp);
  const readme = readdirSync(mp).find(n => n.toLowerCase() === 'readme.txt');
  if (readme) say(`$ cat ${readme}: ${readFileSync(path.join(mp, readme), 'utf8').trim()}`);

  const note = 'Written through rump_msdos.txt';
  const text = `Written through the mount at ${new Date().toISOString()} by pid ${process.pid}.\n`;
  if (writable) {
    step(5, 'Write through the mount');
    writeFileSync(path.join(mp, note), text);
    say(`"${note}": ${statSync(path.join(mp, note)).size} bytes, reads back ${readFileSync(path.join(mp, note), 'utf8') === text ? 'identical' : 'DIFFERENT'}`);
    const { bavail, bsize } = statfsSync(mp);
    say(`free space now ${(bavail * bsize).toLocaleString('en')} bytes`);
  }

  step(writable ? 6 : 5, 'Unmount');
  execFileSync(root ? 'umount' : 'fusermount3', root ? [mp] : ['-u', mp], { env });
  await waitGone(pid);
  mounted = false;
  say(`$ ${root ? 'umount' : 'fusermount3 -u'} ${mp}: the server ${writable ? 'flushed, marked the volume clean and ' : ''}exited`);

  step(writable ? 7 : 6, 'The judge: dosfstools and mtools, which know nothing of rumpfs');
  const fsck = spawnSync('fsck.fat', ['-n', img], { env, encoding: 'utf8' });
  for (const l of (fsck.stdout + fsck.stderr).trim().split('\n')) say(`fsck.fat -n: ${l}`);
  if (fsck.status !== 0) failed = true;
  say(fsck.status === 0 ? 'clean (exit 0)' : `NOT clean: exit ${fsck.status}`);
  if (writable) {
    const back = tool('mtype', ['-i', img, `::${note}`]);
    say(`mtype "${note}": ${back === text ? 'the same bytes' : `DIFFERENT: ${JSON.stringify(back)}`}`);
    if (back !== text) failed = true;
  }
} catch (e) {
  failed = true;
  console.error(`\ndemo: ${(e as Error).message}`);
} finally {
  if (mounted) spawnSync(root ? 'umount' : 'fusermount3', root ? [mp] : ['-u', mp], { env });
  // Never remove a directory that is still mounted.
  if (!readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${mp} `)) rmSync(work, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
