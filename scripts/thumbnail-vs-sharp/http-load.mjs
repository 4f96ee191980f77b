// The client both services get: keeps <inflight> POSTs of one photo in flight for <seconds>
// and prints the completed requests per second. Every response must be a 200 JPEG.
//
// Usage: node http-load.mjs <url> <photo> <inflight> <seconds>
import { readFileSync } from 'node:fs';

const [url, photo, inflight, seconds] = process.argv.slice(2);
const body = readFileSync(photo);

const post = async () => {
  const res = await fetch(url, { method: 'POST', body });
  const out = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200 || out[0] !== 0xff || out[1] !== 0xd8) {
    throw new Error(`${url}: status ${res.status}, ${out.length} bytes`);
  }
};

// One request first, so connection setup and lazy initialisation are not measured.
await post();
let done = 0;
const start = performance.now();
const end = start + Number(seconds) * 1000;
const worker = async () => {
  while (performance.now() < end) {
    await post();
    done++;
  }
};
await Promise.all(Array.from({ length: Number(inflight) }, worker));
console.log(((done * 1000) / (performance.now() - start)).toFixed(2));
