// A multi-threaded Node.js workload for tests/run_real_programs.sh: four worker threads build
// JSON strings and buffers, hash and gzip them, and send digests back to the main thread. V8
// keeps JS objects in its own heap; buffers, zlib streams, crypto and thread set-up use malloc.
// The output depends only on the work.
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');
const zlib = require('zlib');
const crypto = require('crypto');

if (isMainThread) {
  const results = [];
  let done = 0;
  for (let i = 0; i < 4; i++) {
    const w = new Worker(__filename, { workerData: i });
    w.on('message', (m) => {
      results[i] = m;
      if (++done === 4) {
        console.log(results.join('\n'));
        console.log('workers: done');
      }
    });
    w.on('error', (e) => { console.error(e); process.exit(1); });
  }
} else {
  const h = crypto.createHash('sha256');
  const parts = [];
  for (let i = 0; i < 20000; i++) {
    const s = JSON.stringify({ i, w: workerData, a: Array(i % 50).fill('x' + i) });
    parts.push(Buffer.from(s));
    if (parts.length > 500) parts.shift();
    h.update(s);
  }
  const all = Buffer.concat(parts);
  const back = zlib.gunzipSync(zlib.gzipSync(all));
  parentPort.postMessage(`${workerData} ${h.digest('hex').slice(0, 16)} ${back.length} ${back.equals(all)}`);
}
