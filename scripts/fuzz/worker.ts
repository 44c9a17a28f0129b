// The worker process: runs one job at a time for the parent (over IPC),
// reporting each step before it starts. A driver panic (abort), a runaway
// loop or an allocation blow-up takes down only this process.
//   node worker.js [--target module.js]
// --target replaces the exercise (tests use a tiny fake target).
import { pathToFileURL } from 'node:url';
import type { ExerciseResult, Job, StepContext } from './exercise.js';

export type ToWorker = { type: 'job'; id: number; job: Job };
export type FromWorker =
  | { type: 'step'; id: number; name: string }
  | { type: 'done'; id: number; result: ExerciseResult };

type Exercise = (job: Job, ctx: StepContext) => Promise<ExerciseResult>;

const i = process.argv.indexOf('--target');
const target = i > 0 ? pathToFileURL(process.argv[i + 1]).href : './exercise.js';
const { exercise } = await import(target) as { exercise: Exercise };

const send = (m: FromWorker) => process.send!(m);
let current = -1;

// A rejection nobody awaited (a driver's stray promise) ends the worker with
// the error on stderr, where the parent reads it: that is a crash.
process.on('unhandledRejection', e => {
  process.stderr.write(`unhandled rejection during job ${current}: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(70);
});

process.on('message', (m: ToWorker) => {
  current = m.id;
  exercise(m.job, { step: name => send({ type: 'step', id: m.id, name }) })
    .then(result => send({ type: 'done', id: m.id, result }))
    .catch((e: unknown) => {
      process.stderr.write(`worker failure: ${e instanceof Error ? e.stack : String(e)}\n`);
      process.exit(70);
    });
});
process.on('disconnect', () => process.exit(0));
