// --help and --version on every command: the synopsis and the options on
// stdout, exit 0, nothing mounted or handed to the system's mount; after
// `--` they are operands.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, ensureBuilt } from './helpers/mount.js';

const commands = [
  { prog: 'rump_msdos', script: 'servers/rump_msdos', options: ['-o options', 'shortname=', 'showexec', 'part=N', 'errors='] },
  { prog: 'rump_tmpfs', script: 'servers/rump_tmpfs', options: ['-s size', 'nr_inodes=', 'rumpuser=NAME'] },
  { prog: 'rump_cd9660', script: 'servers/rump_cd9660', options: ['norrip', 'nojoliet', 'session=N'] },
  { prog: 'rumpmount', script: 'scripts/rumpmount', options: ['-t type', '-T fstab', '-a'] },
  { prog: 'rumpumount', script: 'scripts/rumpumount', options: ['-w seconds', '-l'] },
  { prog: 'mount.rump', script: 'scripts/mount_rump', options: ['-t rump.type', '-N namespace'] },
];

interface Ran { status: number | null; stdout: string; stderr: string }

function node(script: string, args: string[]): Promise<Ran> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [path.join(ROOT, 'dist', `${script}.js`), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    c.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    c.on('close', status => resolve({ status, stdout, stderr }));
  });
}

describe('--help and --version', () => {
  beforeAll(() => ensureBuilt(), 120_000);

  it('every command: synopsis and options, the version, exit 0', async () => {
    const version = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    const runs = await Promise.all(commands.flatMap(c => [
      node(c.script, ['--help']), node(c.script, ['--version']),
      // Anywhere among the arguments, as GNU tools take it.
      node(c.script, ['-o', 'ro', '--help', 'x', 'y']),
    ]));
    commands.forEach((c, i) => {
      const [help, ver, late] = runs.slice(3 * i, 3 * i + 3);
      expect(help.stderr, c.prog).toBe('');
      expect(help.status, c.prog).toBe(0);
      expect(help.stdout, c.prog).toMatch(new RegExp(`^usage: ${c.prog.replace('.', '\\.')} `));
      for (const o of [...c.options, '--help, --version']) expect(help.stdout, `${c.prog} ${o}`).toContain(o);
      expect(ver).toEqual({ status: 0, stdout: `${c.prog} (rumpfs) ${version}\n`, stderr: '' });
      expect(late, c.prog).toEqual(help);
    });
  }, 60_000);

  it('after -- they are operands', async () => {
    const r = await node('servers/rump_msdos', ['--', '--help', '/nonexistent-mount-point']);
    expect(r.status).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^rump_msdos: /);
  });
});
