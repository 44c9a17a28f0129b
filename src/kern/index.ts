// The kernel's interface for drivers and clients, in one import.
export * from './errno.js';
export * from './panic.js';
export * from './time.js';
export * from './kauth.js';
export * from './lock.js';
export * from './lwp.js';
export * from './vnode_types.js';
export * from './vnode.js';
export * from './vnode_if.js';
export * from './vcache.js';
export * from './vfs.js';
export * from './vfs_vnops.js';
export * from './namei.js';
export * from './vfs_syscalls.js';
export * from './genfs_rdonly.js';
export * from './blkdev.js';
export * from './bio.js';
