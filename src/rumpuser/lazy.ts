// Node modules that only some of a server's paths use, loaded on first use:
// each one loaded with the program costs every mount its compile time
// (node:child_process ~3 ms of start-up here; node:net, loaded in
// sandbox.ts's probe only, ~4 ms; node:v8 loads node:stream and a dozen
// modules with it).
import { createRequire } from 'node:module';

const load = createRequire(import.meta.url);

/** node:child_process: fusermount3 for ordinary users, the launcher, the supervisor, the escape probe. */
export const childProcess = (): typeof import('node:child_process') => load('node:child_process');

/** node:v8: heap figures for a server's status report (SIGUSR2). */
export const v8 = (): typeof import('node:v8') => load('node:v8');
