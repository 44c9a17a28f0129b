// chmod(1) mode arguments: octal, or symbolic clauses like u+x,go-w,a=rX.
import { FsuError } from './common.js';

/** The new mode for `spec` applied to `old` (umask applies to clauses without who, as chmod). */
export function parseMode(spec: string, old: number, isDir: boolean, umask = process.umask()): number {
  if (/^[0-7]+$/.test(spec)) return parseInt(spec, 8);
  let mode = old & 0o7777;
  for (const clause of spec.split(',')) {
    const m = /^([ugoa]*)(([-+=])([rwxXst]*|[ugo]))+$/.exec(clause);
    if (!m) throw new FsuError(`invalid mode: '${spec}'`);
    const whoStr = /^[ugoa]*/.exec(clause)![0];
    const who = whoStr === '' ? 0o7777 & ~umask : [...whoStr].reduce((w, c) => w | ({ u: 0o4700, g: 0o2070, o: 0o1007, a: 0o7777 } as Record<string, number>)[c], 0);
    // '=' clears what the clause names (all of it with no who), then sets.
    const clear = whoStr === '' ? 0o7777 : who;
    for (const [, op, perms] of clause.slice(whoStr.length).matchAll(/([-+=])([rwxXst]*|[ugo])/g)) {
      let bits = 0;
      if (/^[ugo]$/.test(perms)) {
        const shift = { u: 6, g: 3, o: 0 }[perms as 'u' | 'g' | 'o'];
        const v = (mode >> shift) & 7;
        bits = (v << 6) | (v << 3) | v;
      } else for (const p of perms) {
        bits |= ({ r: 0o444, w: 0o222, x: 0o111, s: 0o6000, t: 0o1000 } as Record<string, number>)[p] ?? 0;
        if (p === 'X' && (isDir || (mode & 0o111))) bits |= 0o111;
      }
      bits &= who;
      if (op === '+') mode |= bits;
      else if (op === '-') mode &= ~bits;
      else mode = (mode & ~clear) | bits;
    }
  }
  return mode;
}
