// Which READDIRPLUS entries carry a node and attributes. With
// READDIRPLUS_AUTO Linux asks READDIRPLUS for the first batch of every
// directory it lists, whether the caller wants attributes (ls -l) or only
// names and types (find, ls, du's descent): each entry with a node id costs
// the server a lookup and a vnode, and the kernel an inode and a dentry.
// An entry with node id 0 is a plain directory entry to the kernel
// (fs/fuse/readdir.c, fuse_direntplus_link: "the userspace filesystem did
// not want to return attributes/handle for this entry"), as READDIR gives:
// a caller that then wants the file's attributes makes a LOOKUP.
//
// So: directories always go with their node (a walk descends into them);
// other entries go bare while the host shows no interest in them, and with
// their nodes once it does. The host's interest shows in LOOKUPs of names a
// bare answer gave (ls -l stats every name it listed); after HITS of those
// the mount answers in full. While in full, every `interval` directories one
// is answered bare as a probe: if none of its names is looked up before the
// next directory is listed, bare again; if they are, the interval doubles
// (up to MAX_INTERVAL). Only costs move: a bare entry is always a correct
// answer.

/** LOOKUPs of a bare answer's names that switch the mount to full answers. */
const HITS = 2;
/** Directories answered in full between probes, at first and at most. */
const FIRST_INTERVAL = 16, MAX_INTERVAL = 64;

/** A directory answered bare: which names, and how many of them were looked up since. */
interface Probe { dir: number; names: Set<string>; hits: number }

export class PlusPolicy {
  private bare = true;
  /** The last directory answered bare, until the host's interest in it is known. */
  private probe: Probe | null = null;
  /** The directory being listed, and whether it is answered bare. */
  private dir = -1;
  private dirBare = true;
  private fullDirs = 0;
  private interval = FIRST_INTERVAL;

  /**
   * READDIRPLUS of directory node `dir` from `offset`: are its
   * non-directory entries answered bare? A directory's later batches go as
   * its first did.
   */
  begin(dir: number, offset: number): boolean {
    if (offset !== 0 && dir === this.dir) return this.dirBare;
    const p = this.probe;
    // A probe that had nothing but directories tells nothing: the next directory is one too.
    const carry = !this.bare && p !== null && p.dir !== dir && p.names.size === 0;
    // A listed directory whose bare names nobody looked up: the host wants names only.
    if (p && p.dir !== dir && p.names.size > 0) {
      this.probe = null;
      if (p.hits === 0) {
        this.bare = true;
        this.interval = FIRST_INTERVAL;
      }
    }
    this.dir = dir;
    if (this.bare) {
      this.dirBare = true;
    } else if (carry || ++this.fullDirs >= this.interval) {
      this.fullDirs = 0;
      this.dirBare = true;
    } else {
      this.dirBare = false;
    }
    if (this.dirBare && this.probe?.dir !== dir) this.probe = { dir, names: new Set(), hits: 0 };
    return this.dirBare;
  }

  /** `name` of directory `dir` went without its node. */
  answeredBare(dir: number, name: string): void {
    if (this.probe?.dir === dir) this.probe.names.add(name);
  }

  /** The host looked up `name` in directory node `dir`. */
  looked(dir: number, name: string): void {
    const p = this.probe;
    if (!p || p.dir !== dir || !p.names.has(name) || ++p.hits < HITS) return;
    this.probe = null;
    // A probe from full answers that failed: probe less often.
    if (!this.bare) this.interval = Math.min(this.interval * 2, MAX_INTERVAL);
    this.bare = false;
    this.fullDirs = 0;
    if (this.dir === dir) this.dirBare = false;
  }
}
