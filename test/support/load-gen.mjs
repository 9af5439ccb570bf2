// Closed-loop OIP REST load from a separate process (so the gateway's event loop is not shared
// with the load generator). Usage: node load-gen.mjs <baseUrl> <model> <clients> <items>
// Runs until stdin closes or SIGTERM; prints {"ok":n,"failed":n} on exit.
const [base, model, clientsArg, itemsArg] = process.argv.slice(2);
const clients = Number(clientsArg);
const items = Number(itemsArg ?? 1);
const x = new Float32Array(items * 3 * 48 * 192).fill(0.25);
const header = Buffer.from(
  JSON.stringify({
    inputs: [{ name: 'x', datatype: 'FP32', shape: [items, 3, 48, 192], parameters: { binary_data_size: x.byteLength } }],
    parameters: { binary_data_output: true },
  }),
);
const body = Buffer.concat([header, Buffer.from(x.buffer)]);
let running = true;
let ok = 0;
let failed = 0;
const stop = () => {
  running = false;
};
process.on('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.resume();
const loops = Array.from({ length: clients }, async () => {
  while (running) {
    try {
      const res = await fetch(`${base}/v2/models/${model}/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
        body,
      });
      await res.arrayBuffer();
      if (res.status === 200) ok++;
      else failed++;
    } catch {
      failed++;
    }
  }
});
await Promise.all(loops);
process.stdout.write(JSON.stringify({ ok, failed }) + '\n');
process.exit(0);
