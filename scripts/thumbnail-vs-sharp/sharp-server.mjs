// A minimal thumbnail service with sharp, the one a Node user would write: POST an image to
// /thumbnail?w=&h=&q= and get a JPEG fitted inside w x h (EXIF orientation applied, never
// enlarged), like offload-service's route with its defaults.
//
// Usage: UV_THREADPOOL_SIZE=<n> node sharp-server.mjs [port]   (port 0, the default, picks
// a free one). Prints `listening <port>` once ready. Loopback only.
import { createRequire } from 'node:module';
import { createServer } from 'node:http';

const require = createRequire(new URL('./scratch/', import.meta.url));
const sharp = require('sharp');

// One libvips thread per image: parallelism comes from the libuv pool, as with offload's pool.
sharp.concurrency(1);
sharp.cache(false);

const server = createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  if (req.method !== 'POST' || url.pathname !== '/thumbnail') {
    res.writeHead(404).end();
    return;
  }
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', async () => {
    const w = Number(url.searchParams.get('w') ?? 256);
    const h = Number(url.searchParams.get('h') ?? 256);
    const q = Number(url.searchParams.get('q') ?? 80);
    try {
      const out = await sharp(Buffer.concat(chunks))
        .rotate()
        .resize(w, h, { fit: 'inside', withoutEnlargement: true })
        .jpeg({ quality: q })
        .toBuffer();
      res.writeHead(200, { 'content-type': 'image/jpeg' }).end(out);
    } catch (e) {
      res.writeHead(422, { 'content-type': 'text/plain' }).end(String(e));
    }
  });
});

server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
});
