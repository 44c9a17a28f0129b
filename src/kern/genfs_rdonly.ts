// The vnode operations every read-only file system shares (NetBSD's genfs
// helpers): anything that would write is EROFS, close and fsync have
// nothing to do, nothing is kept past the last reference, and names are up
// to 255 bytes. A driver gives the operations that read its format.
import { kerr } from './errno.js';
import type { VnodeOps } from './vnode.js';

const erofs = async (): Promise<never> => { throw kerr('EROFS'); };

export type ReadOnlyOps = Pick<VnodeOps, 'lookup' | 'open' | 'getattr' | 'read' | 'readdir' | 'readlink'> & Partial<VnodeOps>;

export function genfs_rdonly_vnodeops(ops: ReadOnlyOps): VnodeOps {
  return {
    create: erofs, mkdir: erofs, symlink: erofs, link: erofs, remove: erofs, rmdir: erofs, rename: erofs,
    setattr: erofs, write: erofs, setxattr: erofs, removexattr: erofs,
    close: async () => {},
    fsync: async () => {},
    inactive: async () => false,
    reclaim: async (vp) => { vp.data = null; },
    pathconf: (_vp, name) => ({ name_max: 255, link_max: 65535, filesize_bits: 64 })[name],
    ...ops,
  };
}
