#!/usr/bin/env -S UV_USE_IO_URING=0 node
// fsu: the fs-utils commands in one place. `fsu --help` lists them;
// `fsu CMD image ...` runs fsu_CMD.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
/** Modules here that are not commands. */
const NOT_COMMANDS = new Set(['fsu', 'common', 'copy', 'format', 'modes']);
const COMMANDS: Record<string, string> = {
  cat: 'print files', chmod: 'change modes (octal or u+x,go-w)', chown: 'change owner[:group]',
  cp: 'copy inside the image (-r -p)', df: 'free space (-h -i -T)', du: 'disk usage (-a -s -c -h -b)',
  ecp: 'copy host -> image, or -g image -> host (-r -p)', find: 'search (-name -iname -type -size -maxdepth -print0)',
  get: 'copy image -> host (-r -p)', ln: 'make links (-s -f)', ls: 'list (-l -a -A -R -h -i -d -1)',
  mkdir: 'make directories (-p -m)', mv: 'move or rename', put: 'copy host -> image (-r -p)', rm: 'remove (-r -f)',
  rmdir: 'remove empty directories', stat: 'file status (-L -c FORMAT)', touch: 'set times, create files (-c -a -m -d -t -r)',
  write: 'standard input -> file (-a)',
};

const available = readdirSync(here).filter(f => f.endsWith('.js')).map(f => f.slice(0, -3)).filter(n => !NOT_COMMANDS.has(n)).sort();
const [cmd, ...rest] = process.argv.slice(2);

if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
  const lines = available.map(n => `  fsu_${n.padEnd(7)} ${COMMANDS[n] ?? ''}`);
  process.stdout.write(`usage: fsu_CMD [-t type] [-o part=N,opts] image[%part=N] [options] [args]
       fsu CMD ...  (the same)
File utilities that work on a file system image or device with no mount and
no privileges; the type is detected unless -t is given, and the image is
opened read-only unless the command writes. Commands:
${lines.join('\n')}
\`fsu_CMD --help\` shows a command's options. Exit status as the coreutils
command's; 70 when a driver panics.
`);
  process.exit(cmd === undefined ? 1 : 0);
}
if (!available.includes(cmd)) {
  process.stderr.write(`fsu: unknown command '${cmd}' (fsu --help lists them)\n`);
  process.exit(1);
}
const script = path.join(here, `${cmd}.js`);
process.argv = [process.argv[0], script, ...rest];
await import(pathToFileURL(script).href);
