#!/usr/bin/env node
// npm start: the kernel and a driver in-process, through the library.
// (Once the mount helpers exist this becomes the rump_msdos demo.)
import { mount } from '../src/ukfs/index.js';

const fs = await mount('tmpfs', 'demo', { options: { size: 16 << 20 } });
await fs.mkdir('/docs/notes', { recursive: true });
await fs.writeFile('/docs/readme.txt', 'rumpfs: file system drivers in a small TypeScript kernel\n');
await fs.writeFile('/docs/notes/big.bin', new Uint8Array(300_000).fill(7));
await fs.symlink('readme.txt', '/docs/link');
await fs.rename('/docs/notes/big.bin', '/docs/big.bin');

async function list(dir: string, indent = ''): Promise<void> {
  for (const d of await fs.readdir(dir, { withFileTypes: true })) {
    const p = `${dir === '/' ? '' : dir}/${d.name}`;
    const st = await fs.lstat(p);
    const extra = d.isSymbolicLink() ? ` -> ${await fs.readlink(p)}` : d.isFile() ? ` (${st.size} bytes)` : '/';
    console.log(`${indent}${(st.mode & 0o7777).toString(8).padStart(4, '0')} ${d.name}${extra}`);
    if (d.isDirectory()) await list(p, indent + '  ');
  }
}
console.log('tmpfs, in-process (no mount, no root):');
await list('/');
console.log(await fs.readFile('/docs/link', 'utf8'));
const s = await fs.statfs();
console.log(`statfs: ${s.blocks - s.bfree} of ${s.blocks} blocks of ${s.bsize} bytes used`);
await fs.unmount();
