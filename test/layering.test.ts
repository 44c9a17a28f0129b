// The layer rules of ARCHITECTURE.md, checked on the source: a driver imports
// only src/kern and its own files; the kernel reaches the host only through
// src/rumpuser; p2k knows no driver.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const top = path.resolve(import.meta.dirname, '..');
const importRe = /(?:^|\s)(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s+['"]([^'"]+)['"]/gm;

function* tsFiles(dir: string): Generator<string> {
  let names: string[];
  try { names = readdirSync(dir); } catch { return; }
  for (const n of names) {
    const p = path.join(dir, n);
    if (statSync(p).isDirectory()) yield* tsFiles(p);
    else if (n.endsWith('.ts') && !n.endsWith('.d.ts')) yield p;
  }
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(importRe)].map(m => m[1] ?? m[2] ?? m[3]);
}

/** Every import of files under `dir` that `allowed` refuses, as "file: spec". */
function violations(dir: string, allowed: (file: string, spec: string, target: string | null) => boolean): string[] {
  const out: string[] = [];
  for (const f of tsFiles(path.join(top, dir))) {
    for (const spec of importsOf(f)) {
      const target = spec.startsWith('.') ? path.relative(top, path.resolve(path.dirname(f), spec)) : null;
      if (!allowed(f, spec, target)) out.push(`${path.relative(top, f)}: ${spec}`);
    }
  }
  return out;
}

describe('layer rules', () => {
  it('drivers import only src/kern and their own files', () => {
    const bad = violations('src/fs', (file, _spec, target) => {
      const own = path.relative(top, file).split(path.sep).slice(0, 3).join('/');
      return target !== null && (target.startsWith(own + '/') || target.startsWith('src/kern/'));
    });
    expect(bad).toEqual([]);
  });

  it('the kernel reaches the host only through src/rumpuser', () => {
    const bad = violations('src/kern', (_file, _spec, target) =>
      target !== null && (target.startsWith('src/kern/') || target.startsWith('src/rumpuser/')));
    expect(bad).toEqual([]);
  });

  it('p2k knows no driver', () => {
    const bad = violations('p2k', (_file, _spec, target) => target === null || !target.startsWith('src/fs/'));
    expect(bad).toEqual([]);
  });

  it('the checker itself sees imports (it can fail)', () => {
    expect(importsOf(path.join(top, 'src/kern/vfs.ts'))).toContain('./vnode.js');
    expect(importsOf(path.join(top, 'src/rumpuser/index.ts'))).toContain('node:fs');
  });
});
