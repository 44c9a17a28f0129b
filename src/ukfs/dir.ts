// opendir(): a directory read in batches, as node:fs's Dir (read(), close(),
// for await). Recursive: subdirectories after their parent's entries.
import { O_DIRECTORY, sys_open, vn_close, vn_readdir, VType, type File, type Lwp } from '../kern/index.js';
import { nodeError, syscall } from './errors.js';
import { Dirent } from './stats.js';

export class Dir {
  private fp: File | null = null;
  private cookie = 0;
  private eof = false;
  private buffered: Dirent[] = [];
  private closed = false;
  /** Directories still to read (recursive), as [kernel path, caller's path]. */
  private readonly pending: [string, string][] = [];
  private current: [string, string];

  constructor(private readonly lwp: () => Lwp, kpath: string, readonly path: string, private readonly recursive: boolean) {
    this.current = [kpath, path];
  }

  /** Opens the first directory now, so that opendir() fails as Node's does (ENOENT, ENOTDIR). */
  async start(): Promise<this> {
    this.fp = await this.openDir(this.current[0]);
    return this;
  }

  private openDir(kpath: string): Promise<File> {
    return syscall('opendir', this.path, () => sys_open(this.lwp(), kpath, O_DIRECTORY));
  }

  /** The next entry, or null at the end. */
  async read(): Promise<Dirent | null> {
    if (this.closed) throw nodeError('ERR_DIR_CLOSED', 'Directory handle was closed');
    for (;;) {
      const d = this.buffered.shift();
      if (d) return d;
      if (!this.eof && this.fp) {
        const fp = this.fp;
        const { entries, eof } = await syscall('scandir', this.path, () => vn_readdir(this.lwp(), fp, this.cookie));
        this.eof = eof || entries.length === 0;
        if (entries.length) this.cookie = entries[entries.length - 1].cookie;
        for (const e of entries) {
          if (e.name === '.' || e.name === '..') continue;
          this.buffered.push(new Dirent(e, this.current[1]));
          if (this.recursive && e.type === VType.VDIR)
            this.pending.push([`${this.current[0].replace(/\/$/, '')}/${e.name}`, `${this.current[1].replace(/\/$/, '')}/${e.name}`]);
        }
        continue;
      }
      await this.closeFile();
      const next = this.pending.shift();
      if (!next) return null;
      this.current = next;
      this.cookie = 0;
      this.eof = false;
      this.fp = await this.openDir(next[0]);
    }
  }

  private async closeFile(): Promise<void> {
    const fp = this.fp;
    this.fp = null;
    if (fp && !fp.closed) await syscall('closedir', this.path, () => vn_close(this.lwp(), fp));
  }

  async close(): Promise<void> {
    if (this.closed) throw nodeError('ERR_DIR_CLOSED', 'Directory handle was closed');
    this.closed = true;
    await this.closeFile();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Dirent> {
    try {
      for (let d; (d = await this.read()) !== null;) yield d;
    } finally {
      if (!this.closed) await this.close();
    }
  }
}
