// Outcome classes. refused, served and served-with-errors are a driver
// doing its job; panic-contained is a driver noticing broken invariants and
// dying alone (in-process that is still a driver bug to fix); hang, escape
// and crash are uncontained and fail the campaign.
import type { Failure } from './exercise.js';
import type { RunOutcome } from './pool.js';

export const CLASSES = ['refused', 'served', 'served-with-errors', 'panic-contained', 'hang', 'escape', 'crash'] as const;
export type OutcomeClass = (typeof CLASSES)[number];

export const UNCONTAINED: readonly OutcomeClass[] = ['hang', 'escape', 'crash'];

export interface Outcome {
  class: OutcomeClass;
  /** The step it happened in (for hang, crash, panic). */
  step?: string;
  /** One line: the refusal, the panic line, the exception, what escaped. */
  message: string;
  stack?: string;
  /** errno failures of served-with-errors. */
  errors?: Failure[];
  notes?: string[];
  /** The end of the worker's or server's stderr, for deaths. */
  stderr?: string;
}

export function panicLine(stderr: string): string | undefined {
  return /^panic: .*$/m.exec(stderr)?.[0];
}

/** The class of one run of the exercise in a worker, given what escaped (if anything). */
export function classify(run: RunOutcome, escaped: string[]): Outcome {
  if (escaped.length > 0) return { class: 'escape', message: escaped.join('; ') };
  switch (run.kind) {
    case 'timeout':
      return { class: 'hang', step: run.step, message: `no progress for ${run.stepMs} ms in step "${run.step}"`, stderr: tail(run.stderr) };
    case 'died': {
      const how = run.signal ? `killed by ${run.signal}` : `exited with status ${run.code}`;
      const p = panicLine(run.stderr);
      if (p && run.signal === 'SIGABRT') return { class: 'panic-contained', step: run.step, message: p, stderr: tail(run.stderr) };
      return { class: 'crash', step: run.step, message: `worker ${how} without a panic in step "${run.step}"`, stderr: tail(run.stderr) };
    }
    case 'done': {
      const r = run.result;
      if (r.crash) return { class: 'crash', step: r.crash.step, message: r.crash.message, stack: r.crash.stack, notes: r.notes };
      if (!r.mounted) return { class: 'refused', message: r.refusal?.message ?? 'not mounted' };
      if (r.errors.length > 0) {
        return { class: 'served-with-errors', message: `${r.errors.length} failed: ${r.errors[0].message}`, errors: r.errors, notes: r.notes };
      }
      return { class: 'served', message: `${r.entries} entries, ${r.bytes} bytes`, notes: r.notes };
    }
  }
}

export function tail(s: string, lines = 30): string {
  return s.split('\n').slice(-lines).join('\n');
}
