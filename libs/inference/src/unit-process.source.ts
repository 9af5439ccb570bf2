import { ortToWireData, wireToOrtData } from './runner-wire';

/**
 * Source of a batch unit's child process (a string, like the replica worker's, so it runs from
 * dist/ and under vitest alike). One onnxruntime session per process: a process, unlike a
 * worker thread, can be stopped (SIGSTOP) and continued by its parent, which is how a revoked
 * batch unit leaves the cores within microseconds instead of at the end of its model batch.
 * A run may carry raw items instead of a tensor: the process decodes them itself with the item
 * decoder it was given at start, so decoding happens on the unit's share (and stops with it).
 */
export const UNIT_PROCESS_SOURCE = `
// With a callback, a send to a parent that is gone fails quietly (the disconnect handler exits).
const send = (m) => process.send(m, () => undefined);
const wireToOrtData = ${wireToOrtData.toString()};
const ortToWireData = ${ortToWireData.toString()};
let session;
let decode = null;
let chain = Promise.resolve();
// The parent closing the channel (release, or its own exit) ends the unit.
process.on('disconnect', () => process.exit(0));
process.on('message', (m) => {
  chain = chain.then(() => handle(m));
});
const meta = (xs) => xs.map((x) => ({ name: x.name, isTensor: x.isTensor, type: x.type, shape: x.shape ? [...x.shape] : [] }));
async function handle(m) {
  if (m.type === 'init') {
    try {
      const ort = require(m.ortPath);
      session = await ort.InferenceSession.create(m.modelPath, m.sessionOptions);
      session.ort = ort;
      // The decoder is the parent's own function, shipped as source: one implementation.
      if (m.decodeSource) decode = (0, eval)('(' + m.decodeSource + ')');
      send({ type: 'ready', inputMetadata: meta(session.inputMetadata), outputMetadata: meta(session.outputMetadata) });
    } catch (e) {
      send({ type: 'init-error', message: String((e && e.message) || e) });
    }
    return;
  }
  try {
    const feeds = {};
    if (m.items) {
      const { name, itemShape, perItem } = m.input;
      const data = new Float32Array(m.items.length * perItem);
      m.items.forEach((it, j) => decode(it, perItem, data, j * perItem));
      feeds[name] = new session.ort.Tensor('float32', data, [m.items.length, ...itemShape]);
    } else {
      for (const f of m.feeds) feeds[f.name] = new session.ort.Tensor(f.type, wireToOrtData(f.data), f.dims);
    }
    const out = await session.run(feeds, m.outputs);
    send({ type: 'result', id: m.id, outputs: m.outputs.map((name) => ({ name, type: out[name].type, dims: [...out[name].dims], data: ortToWireData(out[name].data) })) });
  } catch (e) {
    send({ type: 'error', id: m.id, message: String((e && e.message) || e) });
  }
}
`;
