// A block device whose writes fail once armed, for the write-fault tests:
// an image's device wrapped, in-process.
import { kerr, type BlockDevice } from '../../src/kern/index.js';

export class FaultDevice implements BlockDevice {
  /** While set: writes that reach byte `from` (0: all of them) fail with `code`. */
  armed: { code: 'ENOSPC' | 'EIO'; from: number } | null = null;
  attempts = 0;
  failures = 0;
  constructor(private readonly dev: BlockDevice) {}
  get path() { return this.dev.path; }
  get sectorSize() { return this.dev.sectorSize; }
  get size() { return this.dev.size; }
  get readOnly() { return this.dev.readOnly; }
  read(buf: Uint8Array, offset: number) { return this.dev.read(buf, offset); }
  async write(buf: Uint8Array, offset: number) {
    this.attempts++;
    if (this.armed && offset + buf.length > this.armed.from) {
      this.failures++;
      throw kerr(this.armed.code, `${this.path}: injected`);
    }
    return this.dev.write(buf, offset);
  }
  flush() { return this.dev.flush(); }
  close() { return this.dev.close(); }
}
