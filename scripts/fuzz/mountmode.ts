// Mount mode: each mutant is mounted by the real server
// (node dist/servers/rump_<type>.js -f image mountpoint, a child we own, in
// its own process group), walked with node:fs through the mount by a worker,
// and unmounted with umount(8). This proves containment: a panicking server
// must leave a mount that answers ENOTCONN (or none) and that umount
// removes; a second, independent kernel tmpfs mount must not change.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Lane } from './campaign.js';
import { classify, panicLine, tail, type Outcome } from './classify.js';
import type { Limits } from './exercise.js';
import { WorkerSlot } from './pool.js';
import type { FuzzTarget } from './targets.js';

/** A problem with the set-up, not with a mutant: the campaign stops with it. */
export class SetupError extends Error {}

const EXIT_USAGE = 1, EXIT_MOUNT_FAILURE = 32;

export function isMounted(dir: string): boolean {
  // mountinfo never blocks on a stuck FUSE server, unlike stat(2) of the mount point.
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some(l => l.split(' ')[4] === dir);
}

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));

const TMPFS_TEXT = 'an independent mount that must stay as it is\n';

export class MountRunner {
  private readonly mnt: string;
  private readonly cwd: string;
  private readonly canaryMnt: string;
  private readonly walker: WorkerSlot;

  private constructor(private readonly root: string, base: string, j: number, private readonly timeoutMs: number, workerPath: string) {
    this.mnt = path.join(base, `mnt${j}`);
    this.cwd = mkdtempSync(path.join(base, 'srv-'));
    this.canaryMnt = path.join(base, `canary-mnt${j}`);
    mkdirSync(this.mnt);
    mkdirSync(this.canaryMnt);
    this.walker = new WorkerSlot({ workerPath, cwd: this.cwd, timeoutMs });
  }

  static serverPath(root: string, t: FuzzTarget): string {
    return path.join(root, 'dist', 'servers', `rump_${t.mountType}.js`);
  }

  /** Fail early and clearly when the file system has no server yet. */
  static check(root: string, t: FuzzTarget): void {
    const p = MountRunner.serverPath(root, t);
    if (!existsSync(p)) throw new SetupError(`mount mode: no server for ${t.fs}: ${path.relative(process.cwd(), p)} does not exist (build with npx tsc, or the server is not written yet)`);
  }

  static async setup(root: string, base: string, jobs: number, timeoutMs: number, workerPath: string): Promise<MountRunner[]> {
    if (process.getuid?.() !== 0) throw new SetupError('mount mode needs root (FUSE mounts and the tmpfs canary mount)');
    if (!existsSync('/dev/fuse')) throw new SetupError('mount mode needs /dev/fuse');
    const runners: MountRunner[] = [];
    try {
      for (let j = 0; j < jobs; j++) {
        const r = new MountRunner(root, base, j, timeoutMs, workerPath);
        runners.push(r);
        const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'fuzzcanary', r.canaryMnt], { encoding: 'utf8' });
        if (m.status !== 0) throw new SetupError(`cannot mount the tmpfs canary: ${m.stderr.trim()}`);
        writeFileSync(path.join(r.canaryMnt, 'canary.txt'), TMPFS_TEXT);
      }
    } catch (e) {
      for (const r of runners) await r.close();
      throw e;
    }
    return runners;
  }

  private canaryChanged(): string[] {
    let text = '';
    try { text = readFileSync(path.join(this.canaryMnt, 'canary.txt'), 'utf8'); } catch { /* reported below */ }
    return text === TMPFS_TEXT && isMounted(this.canaryMnt) ? [] : ['the independent tmpfs mount changed'];
  }

  /** Take the mount away whatever state the server is in (lazy unmount). */
  private forceUnmount(): void {
    if (isMounted(this.mnt)) spawnSync('umount', ['-l', this.mnt], { timeout: 10_000 });
  }

  /**
   * After the server died: the mount answers ENOTCONN (or is already gone)
   * and a plain umount removes it. False: the death left a stuck mount.
   */
  private containedAfterDeath(): boolean {
    if (!isMounted(this.mnt)) return true;
    const st = spawnSync('stat', [this.mnt], { timeout: 3000, encoding: 'utf8' });
    const enotconn = /not connected/i.test(st.stderr ?? '');
    if (!isMounted(this.mnt)) return true;
    const um = spawnSync('umount', [this.mnt], { timeout: 5000 });
    return enotconn && um.status === 0 && !isMounted(this.mnt);
  }

  async run(lane: Lane, t: FuzzTarget, limits: Limits): Promise<Outcome> {
    this.forceUnmount();
    // restart=0: a read-only mount's supervisor would restart a panicked
    // server and hide the panic the fuzzer is looking for.
    const args = [MountRunner.serverPath(this.root, t), '-f', ...(t.readWrite ? [] : ['-o', 'ro,restart=0']), lane.image, this.mnt];
    const server = spawn(process.execPath, args, { cwd: this.cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (d: Buffer) => { output = (output + d.toString()).slice(-(16 << 10)); };
    server.stdout!.on('data', collect);
    server.stderr!.on('data', collect);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(resolve =>
      server.on('close', (code, signal) => resolve({ code, signal })));
    let outcome: Outcome;
    try {
      outcome = await this.serve(server, exited, () => output, lane, t, limits);
    } finally {
      if (server.exitCode === null && server.signalCode === null) {
        killGroup(server);
        await exited;
      }
      this.forceUnmount();
    }
    const escaped = [...lane.escaped(), ...this.canaryChanged()];
    return escaped.length > 0 ? { class: 'escape', message: escaped.join('; ') } : outcome;
  }

  private async serve(server: ChildProcess, exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>,
    output: () => string, lane: Lane, t: FuzzTarget, limits: Limits): Promise<Outcome> {
    const dead = () => server.exitCode !== null || server.signalCode !== null;
    // Mounting is a step like the others: it gets the same timeout (twice: node starts first).
    for (const until = Date.now() + 2 * this.timeoutMs; !isMounted(this.mnt); await sleep(20)) {
      if (dead()) {
        const { code, signal } = await exited;
        const p = panicLine(output());
        if (p) return { class: 'panic-contained', step: 'mount', message: p, stderr: tail(output()) };
        if (code === EXIT_MOUNT_FAILURE) return { class: 'refused', message: lastLine(output()) };
        if (code === EXIT_USAGE) throw new SetupError(`the server exited with status 1 (a usage error, or it cannot start): ${output().trim()}`);
        return { class: 'crash', step: 'mount', message: `server ${signal ? `killed by ${signal}` : `exited with status ${code}`} while mounting`, stderr: tail(output()) };
      }
      if (Date.now() > until) {
        killGroup(server);
        return { class: 'hang', step: 'mount', message: `not mounted after ${2 * this.timeoutMs} ms`, stderr: tail(output()) };
      }
    }

    const run = await this.walker.run({ mode: 'path', root: this.mnt, readWrite: t.readWrite, limits });
    if (run.kind === 'timeout') {
      killGroup(server);
      return { class: 'hang', step: run.step, message: `no answer for ${run.stepMs} ms in step "${run.step}" through the mount`, stderr: tail(output()) };
    }
    await sleep(50); // a server death and its ENOTCONNs arrive together: let the exit be seen
    if (dead()) return this.afterDeath(await exited, output(), run.kind === 'done' ? run.result.errors.at(-1)?.step : run.step);
    if (run.kind === 'died') return classify(run, []);

    // Unmount as a user would; the server must then flush and exit 0.
    const um = spawnSync('umount', [this.mnt], { timeout: this.timeoutMs, encoding: 'utf8' });
    if (um.status !== 0) {
      if (dead()) return this.afterDeath(await exited, output(), 'umount');
      return { class: 'hang', step: 'umount', message: `umount failed: ${(um.stderr ?? um.error?.message ?? '').trim()}`, stderr: tail(output()) };
    }
    const status = await Promise.race([exited, sleep(this.timeoutMs).then(() => null)]);
    if (status === null) return { class: 'hang', step: 'server exit', message: `server still running ${this.timeoutMs} ms after umount`, stderr: tail(output()) };
    if (status.code !== 0) {
      const p = panicLine(output());
      if (p) return { class: 'panic-contained', step: 'unmount', message: p, stderr: tail(output()) };
      const o = classify(run, []);
      return { ...o, class: o.class === 'served' ? 'served-with-errors' : o.class, message: `${o.message}; server exited with status ${status.code} after umount`, stderr: tail(output()) };
    }
    return classify(run, []);
  }

  private afterDeath(status: { code: number | null; signal: NodeJS.Signals | null }, output: string, step: string | undefined): Outcome {
    const contained = this.containedAfterDeath();
    const p = panicLine(output);
    const how = status.signal ? `killed by ${status.signal}` : `exited with status ${status.code}`;
    if (!contained) return { class: 'hang', step, message: `server ${how} and left a mount that umount does not remove`, stderr: tail(output) };
    if (p) return { class: 'panic-contained', step, message: p, stderr: tail(output) };
    return { class: 'crash', step, message: `server ${how} without a panic`, stderr: tail(output) };
  }

  async close(): Promise<void> {
    await this.walker.close();
    this.forceUnmount();
    if (isMounted(this.canaryMnt)) spawnSync('umount', [this.canaryMnt]);
    rmSync(this.cwd, { recursive: true, force: true });
  }
}

function killGroup(child: ChildProcess): void {
  try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* already gone */ }
}

function lastLine(s: string): string {
  return s.trim().split('\n').at(-1) ?? '';
}
