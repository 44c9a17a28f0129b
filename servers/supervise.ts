#!/usr/bin/env node
// The supervisor of a read-only mount (supervisor.ts), a program of its own:
// the launcher of rump_<fs> starts it for read-only mounts. It loads neither
// the kernel nor a driver: it holds the FUSE session and starts servers.
import { superviseMain } from './supervisor.js';

await superviseMain();
