import { openOrtSession } from './gpu/simulated-cuda';
import { ortToWireData, wireToOrtData } from './runner-wire';

/**
 * Source of the replica worker thread, kept as a string so the same code runs from the
 * compiled dist/ and from vitest's TypeScript transform (a Worker cannot load a .ts file).
 * onnxruntime-node's session.run blocks the calling thread for the whole inference, so
 * every replica owns a worker: the gateway's event loop keeps parsing requests meanwhile.
 */
export const REPLICA_WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ortPath);
const wireToOrtData = ${wireToOrtData.toString()};
const ortToWireData = ${ortToWireData.toString()};
const openOrtSession = ${openOrtSession.toString()};
const meta = (m) => m.map((x) => ({ name: x.name, isTensor: x.isTensor, type: x.type, shape: x.shape ? [...x.shape] : [] }));
(async () => {
  let session;
  try {
    session = await openOrtSession(ort, require('node:fs'), workerData.modelPath, workerData.sessionOptions);
  } catch (e) {
    parentPort.postMessage({ type: 'init-error', message: String(e && e.message || e) });
    return;
  }
  parentPort.postMessage({ type: 'ready', inputMetadata: meta(session.inputMetadata), outputMetadata: meta(session.outputMetadata), memoryMiB: session.tandemMemoryMiB });
  // Messages are handled strictly in order: releasing the session while a run is still in
  // flight aborts the whole process (onnxruntime throws a Napi::Error from native code).
  let chain = Promise.resolve();
  let released = false;
  parentPort.on('message', (m) => {
    chain = chain.then(() => handle(m));
  });
  async function handle(m) {
    if (m.type === 'release') {
      if (!released) await session.release();
      released = true;
      parentPort.postMessage({ type: 'released' });
      return;
    }
    if (released) {
      parentPort.postMessage({ type: 'error', id: m.id, message: 'session released' });
      return;
    }
    try {
      const feeds = {};
      for (const f of m.feeds) feeds[f.name] = new ort.Tensor(f.type, wireToOrtData(f.data), f.dims);
      const out = await session.run(feeds, m.outputs);
      const outputs = m.outputs.map((name) => {
        const t = out[name];
        return { name, type: t.type, dims: [...t.dims], data: ortToWireData(t.data) };
      });
      // Packed BYTES outputs are fresh buffers of this message: moved, not copied.
      const transfer = outputs.flatMap((o) => (o.data.ends ? [o.data.bytes.buffer, o.data.ends.buffer] : []));
      parentPort.postMessage({ type: 'result', id: m.id, outputs }, transfer);
    } catch (e) {
      parentPort.postMessage({ type: 'error', id: m.id, message: String(e && e.message || e) });
    }
  }
})();
`;
