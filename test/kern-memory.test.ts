// Bounded memory: the buffer cache and the vnode cache are sized from the
// mount's budget (cache=MiB, default 8) and the volume, and writing a file
// far larger than both keeps the cache at its limit and the process's memory
// bounded (in-process, through ukfs and msdosfs).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { bufcache_stats, CACHE_DEFAULT_MIB, vcache_stats } from '../src/kern/index.js';
import { mount } from '../src/ukfs/index.js';
import { cleanupMounts, pattern, tempDir } from './helpers/mount.js';

afterEach(cleanupMounts);

function mkfat(kb: number, fat: string): string {
  const img = path.join(tempDir('kern-memory-'), 'fat.img');
  execFileSync('mkfs.fat', ['-C', '-F', fat, img, String(kb)], { stdio: 'pipe' });
  return img;
}

const MiB = 1 << 20;

describe('cache budget', () => {
  it('default 8 MiB, cache=MiB, never more than the volume; the vnode cache with it', async () => {
    const big = await mount('msdos', mkfat(128 * 1024, '32'));
    expect(bufcache_stats().limit).toBe(CACHE_DEFAULT_MIB * MiB);
    expect(vcache_stats().max).toBe(CACHE_DEFAULT_MIB * MiB / 4096);
    await big.unmount();
    const small = await mount('msdos', mkfat(128 * 1024, '32'), { options: { cache: 2 } });
    expect(bufcache_stats().limit).toBe(2 * MiB);
    expect(vcache_stats().max).toBe(512);
    await small.unmount();
    const floppy = await mount('msdos', mkfat(1440, '12'));
    expect(bufcache_stats().limit).toBe(1440 * 1024);
    expect(vcache_stats().max).toBe(360);
    await floppy.unmount();
    await expect(mount('msdos', mkfat(1440, '12'), { options: { cache: 'lots' } })).rejects.toMatchObject({ code: 'EINVAL' });
  });

  it('a 300 MiB file written through msdos: the cache stays at its limit, memory does not follow the file', async () => {
    const img = mkfat(400 * 1024, '32');
    const fs = await mount('msdos', img, { options: { cache: 16 } });
    const chunk = pattern(MiB, 3);
    global.gc?.();
    const start = process.memoryUsage().rss;
    let peak = start, cachePeak = 0;
    const fh = await fs.open('/big', 'w');
    const h = createHash('sha256');
    for (let i = 0; i < 300; i++) {
      await fh.write(chunk, 0, chunk.length, i * MiB);
      h.update(chunk);
      if (i % 8 === 0) {
        peak = Math.max(peak, process.memoryUsage().rss);
        cachePeak = Math.max(cachePeak, bufcache_stats().bytes);
      }
    }
    await fh.sync();
    await fh.close();
    peak = Math.max(peak, process.memoryUsage().rss);
    console.log(`300 MiB write, cache=16: rss ${(start / MiB).toFixed(0)} -> peak ${(peak / MiB).toFixed(0)} MiB, buffer cache peak ${(cachePeak / MiB).toFixed(1)} MiB`);
    expect(cachePeak).toBeLessThanOrEqual(16 * MiB);
    expect(peak - start).toBeLessThan(200 * MiB);
    await fs.unmount();
    const r = execFileSync('sh', ['-c', `mtype -i '${img}' ::big | sha256sum`], { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } }).toString();
    expect(r.split(' ')[0]).toBe(h.digest('hex'));
  }, 60_000);
});
