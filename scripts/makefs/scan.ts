// The source tree of makefs: every entry with its host attributes, walked
// once, hard links recognised by (dev, ino) so that a format that holds
// links stores the data once.
import { lstat, readdir, readlink } from 'node:fs/promises';
import path from 'node:path';
import type { Stats } from 'node:fs';

export interface Node {
  /** Path relative to the tree's root ('' for the root). */
  rel: string;
  name: string;
  st: Stats;
  children?: Node[];
  target?: string;
  /** An earlier node of the same file (a hard link). */
  linkOf?: Node;
}

export interface Tree {
  root: Node;
  files: number;
  dirs: number;
  /** Bytes of regular files, each file once. */
  bytes: number;
}

export async function scanTree(dir: string): Promise<Tree> {
  const seen = new Map<string, Node>();
  const t: Tree = { root: undefined as unknown as Node, files: 0, dirs: 0, bytes: 0 };
  const walk = async (rel: string, name: string): Promise<Node> => {
    const st = await lstat(path.join(dir, rel));
    const n: Node = { rel, name, st };
    if (st.isDirectory()) {
      t.dirs++;
      n.children = [];
      const names = (await readdir(path.join(dir, rel))).sort();
      for (const c of names) n.children.push(await walk(rel ? `${rel}/${c}` : c, c));
      return n;
    }
    t.files++;
    if (st.isSymbolicLink()) n.target = await readlink(path.join(dir, rel));
    const key = `${st.dev}:${st.ino}`;
    if (st.nlink > 1 && seen.has(key)) n.linkOf = seen.get(key);
    else {
      seen.set(key, n);
      if (st.isFile()) t.bytes += st.size;
    }
    return n;
  };
  t.root = await walk('', '');
  return t;
}

export function* walkTree(n: Node): Generator<Node> {
  yield n;
  for (const c of n.children ?? []) yield* walkTree(c);
}
