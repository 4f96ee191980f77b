// Thumbnails per second with sharp (libvips), the same job as tasks/benches/thumbnail.rs:
// decode a JPEG, apply EXIF orientation, fit inside 256x256 without enlarging, JPEG quality 80.
//
// Usage: UV_THREADPOOL_SIZE=<n> node sharp-bench.mjs <inflight> <seconds> <photo>...
// <inflight> images are kept in flight; sharp.concurrency(1) gives each one libvips thread,
// so <inflight> = UV_THREADPOOL_SIZE = 1 is one thread, 2 is two.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

const require = createRequire(new URL('./scratch/', import.meta.url));
const sharp = require('sharp');

const [inflight, seconds, ...photos] = process.argv.slice(2);
sharp.concurrency(1);
sharp.cache(false);

const thumb = (buf) =>
  sharp(buf)
    .rotate()
    .resize(256, 256, { fit: 'inside', withoutEnlargement: true })
    .jpeg({ quality: 80 })
    .toBuffer({ resolveWithObject: true });

for (const photo of photos) {
  const buf = readFileSync(photo);
  const first = await thumb(buf);
  // Warm up, then count completed thumbnails in fixed windows; report the median window.
  const rates = [];
  for (let round = 0; round < 5 + 1; round++) {
    let done = 0;
    const end = performance.now() + (Number(seconds) * 1000) / 5;
    const worker = async () => {
      while (performance.now() < end) {
        await thumb(buf);
        done++;
      }
    };
    const start = performance.now();
    await Promise.all(Array.from({ length: Number(inflight) }, worker));
    if (round > 0) rates.push((done * 1000) / (performance.now() - start));
  }
  rates.sort((a, b) => a - b);
  const median = rates[Math.floor(rates.length / 2)];
  console.log(
    `sharp ${sharp.versions.sharp} (libvips ${sharp.versions.vips}) ${basename(photo)} ` +
      `-> ${first.info.width}x${first.info.height}, inflight=${inflight} ` +
      `threadpool=${process.env.UV_THREADPOOL_SIZE ?? 4}: median ${median.toFixed(1)} thumbnails/s ` +
      `(windows: ${rates.map((r) => r.toFixed(1)).join(' ')})`,
  );
}
