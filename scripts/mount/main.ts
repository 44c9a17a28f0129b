// How each command ends: its status, or its MountError's message and status.
import { MountError } from './types.js';

export async function commandMain(prog: string, body: () => Promise<number>): Promise<never> {
  let status: number;
  try {
    status = await body();
  } catch (e) {
    if (!(e instanceof MountError)) throw e;
    process.stderr.write(`${prog}: ${e.message}\n`);
    status = e.status;
  }
  process.exit(status);
}
