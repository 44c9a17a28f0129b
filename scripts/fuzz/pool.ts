// A worker slot: one child process (worker.js) that runs jobs one at a time
// under a per-step timeout. A job that stalls in one step longer than the
// timeout, or exceeds the whole-job budget, gets the worker killed; a dead
// worker is replaced by a fresh one on the next job.
import { fork, type ChildProcess } from 'node:child_process';
import type { ExerciseResult, Job } from './exercise.js';
import type { FromWorker, ToWorker } from './worker.js';

export type RunOutcome =
  | { kind: 'done'; result: ExerciseResult; stderr: string }
  | { kind: 'timeout'; step: string; stepMs: number; stderr: string }
  | { kind: 'died'; step: string; code: number | null; signal: NodeJS.Signals | null; stderr: string };

export interface SlotOptions {
  workerPath: string;
  /** Extra worker arguments (--target for tests). */
  args?: string[];
  /** Where the worker runs: a core dump lands here. */
  cwd: string;
  timeoutMs: number;
  /** Jobs before the worker is replaced, so leaks do not pile up. */
  maxJobs?: number;
}

/** Characters of a worker's stderr kept per job (the panic line, the stack). */
const STDERR_KEEP = 16 << 10;

export class WorkerSlot {
  private child?: ChildProcess;
  private jobs = 0;
  private nextId = 0;
  private stderr = '';
  private closed?: Promise<void>;

  constructor(private readonly opts: SlotOptions) {}

  private spawn(): ChildProcess {
    const child = fork(this.opts.workerPath, this.opts.args ?? [], {
      cwd: this.opts.cwd,
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      execArgv: ['--max-old-space-size=2048'],
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => { this.stderr = (this.stderr + d).slice(-STDERR_KEEP); });
    // Gone: exited and its stderr read to the end (the child's own 'close'
    // event does not come when the IPC channel sits at fd 3).
    this.closed = Promise.all([
      new Promise(resolve => child.once('exit', resolve)),
      new Promise(resolve => child.stderr!.once('close', resolve)),
    ]).then(() => undefined);
    this.jobs = 0;
    return child;
  }

  run(job: Job): Promise<RunOutcome> {
    const child = this.child ??= this.spawn();
    const closed = this.closed!;
    const id = ++this.nextId;
    this.stderr = '';
    this.jobs++;
    const budget = Math.max(60_000, 12 * this.opts.timeoutMs);
    return new Promise<RunOutcome>(resolve => {
      let step = 'start';
      let stepStart = Date.now();
      let stepTimer: NodeJS.Timeout | undefined;
      const finish = (o: RunOutcome) => {
        clearTimeout(stepTimer);
        clearTimeout(jobTimer);
        child.off('message', onMessage);
        child.off('exit', onExit);
        resolve(o);
      };
      const kill = (why: string) => {
        child.off('exit', onExit);
        child.kill('SIGKILL');
        this.child = undefined;
        void closed.then(() => finish({ kind: 'timeout', step: why, stepMs: Date.now() - stepStart, stderr: this.stderr }));
      };
      const arm = () => {
        clearTimeout(stepTimer);
        stepStart = Date.now();
        stepTimer = setTimeout(() => kill(step), this.opts.timeoutMs);
      };
      const jobTimer = setTimeout(() => kill(`${step} (job over its ${budget} ms budget)`), budget);
      const onMessage = (m: FromWorker) => {
        if (m.id !== id) return;
        if (m.type === 'step') {
          step = m.name;
          arm();
        } else {
          finish({ kind: 'done', result: m.result, stderr: this.stderr });
        }
      };
      const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
        this.child = undefined;
        clearTimeout(stepTimer);
        void closed.then(() => finish({ kind: 'died', step, code, signal, stderr: this.stderr }));
      };
      child.on('message', onMessage);
      child.on('exit', onExit);
      arm();
      child.send({ type: 'job', id, job } satisfies ToWorker);
    }).then(o => {
      if (o.kind === 'done' && (!o.result.clean || this.jobs >= (this.opts.maxJobs ?? 200))) void this.close();
      return o;
    });
  }

  /** Stop the worker (it exits when its IPC channel closes). */
  async close(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    const closed = this.closed!;
    child.disconnect();
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await closed;
    clearTimeout(t);
  }
}
