// Open-loop OIP REST load on ppocr_cls from a process of its own: `rate` requests per second for
// `seconds`, latency measured from each request's scheduled send time (a stall counts in full).
// Usage: node open-loop.mjs <baseUrl> <apiKey|-> <rate> <seconds>; prints {"p50","p99","ok","failed"}.
const [base, key, rateArg, secondsArg] = process.argv.slice(2);
const rate = Number(rateArg);
const seconds = Number(secondsArg);
const x = new Float32Array(3 * 48 * 192).map((_, i) => ((i * 7919) % 1000) / 1000);
const header = Buffer.from(
  JSON.stringify({
    inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192], parameters: { binary_data_size: x.byteLength } }],
    parameters: { binary_data_output: true },
  }),
);
const body = Buffer.concat([header, Buffer.from(x.buffer)]);
const headers = {
  'content-type': 'application/octet-stream',
  'inference-header-content-length': String(header.length),
  ...(key !== '-' ? { authorization: `Bearer ${key}` } : {}),
};
const lat = [];
let failed = 0;
const start = performance.now();
const total = Math.round(rate * seconds);
const inflight = [];
for (let i = 0; i < total; i++) {
  const at = start + (i * 1000) / rate;
  const wait = at - performance.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  inflight.push(
    fetch(`${base}/v2/models/ppocr_cls/infer`, { method: 'POST', headers, body })
      .then(async (res) => {
        await res.arrayBuffer();
        if (res.status === 200) lat.push(performance.now() - at);
        else failed++;
      })
      .catch(() => failed++),
  );
}
await Promise.all(inflight);
lat.sort((a, b) => a - b);
const q = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : null);
process.stdout.write(JSON.stringify({ p50: q(0.5), p99: q(0.99), ok: lat.length, failed }) + '\n');
