// What the workloads find or make on every target, the same names everywhere.

/** The large file of the sequential and random workloads. */
export const BIG = 'big';
/** The directory of the create/stat/list/unlink workloads (the root on flat targets). */
export const META_DIR = 'm';
/** The tree of the walk workloads. */
export const TREE_DIR = 'tree';

export const fileName = (i: number) => `f${String(i).padStart(6, '0')}`;

/**
 * A tree of about `files` files: 10 directories of 10 directories, the
 * files spread over the 100 leaves; each file 100 bytes.
 */
export function treeFiles(files: number): string[] {
  const perLeaf = Math.max(1, Math.ceil(files / 100));
  const out: string[] = [];
  for (let a = 0; a < 10; a++) for (let b = 0; b < 10; b++) for (let i = 0; i < perLeaf; i++) out.push(`d${a}/d${b}/${fileName(i)}`);
  return out;
}
export const TREE_FILE_BYTES = 100;
