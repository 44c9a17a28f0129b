// File system type names as mount(8), fstab and NetBSD spell them, and the
// rump server that serves each kernel type.

/** mount(8)'s exit statuses (the servers use the same). */
export const EXIT_USAGE = 1, EXIT_FAILURE = 32, EXIT_SOME_FAILED = 64;

/** A mount that cannot be made or undone: the message for the user, and mount's exit status. */
export class MountError extends Error {
  constructor(message: string, readonly status: number = EXIT_FAILURE) {
    super(message);
  }
}

/** Kernel file system type -> its server; null: the type is known but has no driver yet. */
const SERVERS: Record<string, string | null> = {
  msdos: 'rump_msdos', cd9660: 'rump_cd9660', tmpfs: 'rump_tmpfs', ext2fs: 'rump_ext2fs', udf: 'rump_udf', ntfs: 'rump_ntfs', exfat: 'rump_exfat',
};

/** Linux and NetBSD names -> kernel type. */
const ALIASES: Record<string, string> = {
  msdos: 'msdos', msdosfs: 'msdos', vfat: 'msdos', fat: 'msdos',
  cd9660: 'cd9660', iso9660: 'cd9660',
  ext2fs: 'ext2fs', ext2: 'ext2fs', ext3: 'ext2fs', ext4: 'ext2fs',
  tmpfs: 'tmpfs',
  udf: 'udf',
  ntfs: 'ntfs', ntfs3: 'ntfs',
  exfat: 'exfat',
};

/** The FUSE mount types our servers make (fuse.<subtype>, the subtype being the kernel type). */
export function isRumpFuseType(fstype: string): boolean {
  return fstype.startsWith('fuse.') && fstype.slice(5) in SERVERS;
}

/** Whether an fstab line or command line is for a rump server: the option rump, or a type rump, rump.*, fuse.rump_*. */
export function wantsRump(type: string | undefined, options: readonly (readonly [string, string | true])[]): boolean {
  return options.some(([k]) => k === 'rump') ||
    (type !== undefined && (type === 'rump' || type.startsWith('rump.') || type.startsWith('fuse.rump_')));
}

/**
 * The kernel type a type name stands for: rump, rump.auto, auto or none
 * -> 'auto' (detect from the content); rump.vfat -> msdos;
 * fuse.rump_cd9660 -> cd9660; iso9660 -> cd9660.
 */
export function kernelType(type: string | undefined): string {
  if (type === undefined || type === 'rump' || type === 'auto') return 'auto';
  let name = type;
  if (name.startsWith('rump.')) name = name.slice(5);
  else if (name.startsWith('fuse.rump_')) name = name.slice(10);
  if (name === 'auto') return 'auto';
  const k = ALIASES[name];
  if (k === undefined) throw new MountError(`unknown file system type '${type}'`);
  return k;
}

/** The server program for a kernel type; a type without a driver fails clearly. */
export function serverFor(fstype: string): string {
  const s = SERVERS[fstype];
  if (s === undefined) throw new MountError(`unknown file system type '${fstype}'`);
  if (s === null) throw new MountError(`${fstype}: no driver yet`);
  return s;
}
