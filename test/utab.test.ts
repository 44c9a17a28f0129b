// utab notes of mounts that are gone are dropped when a server adds its own.
import { describe, expect, it } from 'vitest';
import { escapeMount } from '../servers/mountinfo.js';
import { utabPrune } from '../servers/utab.js';

describe('utabPrune', () => {
  const line = (target: string) => `SRC=/img TARGET=${escapeMount(target)} ROOT=/ OPTS=uhelper=rump`;

  it('keeps the notes of what is mounted, drops the rest, keeps lines it cannot read', () => {
    const text = [line('/mnt/a'), line('/mnt/gone'), line('/mnt/with space'), 'ID=7 SRC=x', line('/mnt/a b/c\\d'), ''].join('\n');
    const mounted = new Set(['/mnt/a', '/mnt/with space', '/mnt/a b/c\\d'].map(escapeMount));
    expect(utabPrune(text, mounted)).toBe([line('/mnt/a'), line('/mnt/with space'), 'ID=7 SRC=x', line('/mnt/a b/c\\d'), ''].join('\n'));
  });

  it('gives an empty utab for an empty one, and ends a kept last line', () => {
    expect(utabPrune('', new Set())).toBe('');
    expect(utabPrune(line('/x'), new Set([escapeMount('/x')]))).toBe(line('/x') + '\n');
    expect(utabPrune(`${line('/x')}\n${line('/y')}\n`, new Set())).toBe('');
  });
});
