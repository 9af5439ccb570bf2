/**
 * Entry of a batch unit: a child process (a CPU unit, which can be stopped with SIGSTOP, or a GPU
 * unit, pinned to its one device), or a worker thread. UnitRunner compiles this file with compileUserModule and the unit
 * evaluates it with evaluateUserModule, so vitest's TypeScript sources and dist/ serve alike.
 * Its default export is called once with the channel to the parent.
 */
import type { Tensor } from '@tandem/sdk';
import { errorReport } from '../node-backend/node-model.host';
import { fromNodeWire, toNodeWire } from '../node-backend/node-replica.wire';
import { answerLines } from './unit-lines';
import { ndjsonItemsOf } from './ndjson-items';
import { UnitPipeline } from './unit-pipeline';
import type { ToUnit, UnitChannel, UnitItemsDecoder, UnitModelSpec } from './unit.wire';

export default function runUnitHost(channel: UnitChannel): void {
  let pipeline: UnitPipeline | undefined;
  let decode: UnitItemsDecoder | undefined;
  let seq = 0;
  const resolving = new Map<number, { resolve: (s: UnitModelSpec) => void; reject: (e: Error) => void }>();
  // open/run/close in arrival order (a close never races a run); 'resolved' answers a run in progress.
  let chain = Promise.resolve();

  const handle = async (m: ToUnit): Promise<void> => {
    switch (m.type) {
      case 'init':
        pipeline = new UnitPipeline({
          placement: m.placement,
          resolve: (model, version) =>
            new Promise((resolve, reject) => {
              const id = ++seq;
              resolving.set(id, { resolve, reject });
              channel.send({ type: 'resolve', id, model, ...(version !== undefined ? { version } : {}) });
            }),
          log: (level, msg, fields) => channel.send({ type: 'log', level, msg, ...(fields ? { fields } : {}) }),
        });
        // The batch app's item decoder, shipped as source: one implementation for every unit.
        if (m.decodeSource) decode = (0, eval)(`(${m.decodeSource})`) as UnitItemsDecoder;
        channel.send({ type: 'ready' });
        return;
      case 'open':
        try {
          const { name, version, signature, maxBatchSize } = await pipeline!.open(m.model, m.version);
          channel.send({ type: 'opened', id: m.id, model: { name, version, signature, maxBatchSize } });
        } catch (e) {
          channel.send({ type: 'error', id: m.id, error: errorReport(e) });
        }
        return;
      case 'run':
        try {
          let inputs: Tensor[];
          let requests: number[] | undefined;
          if (m.items || m.ndjson) {
            if (!decode || !m.itemInputs) throw new Error('this unit has no item decoder');
            const items = m.items ?? ndjsonItemsOf(m.ndjson!, m.itemCount ?? -1);
            inputs = decode(items, m.itemInputs);
            // Every item is a request of its own (ExecuteInfo.requests); a model without a batch
            // dimension runs one item at a time, as the sample itself.
            requests = items.map(() => 1);
            if ((await pipeline!.open(m.model, m.version)).maxBatchSize === 0) inputs = inputs.map((t) => ({ ...t, shape: t.shape.slice(1) }));
          } else {
            inputs = fromNodeWire(m.inputs ?? []);
          }
          const outputs = await pipeline!.run(m.model, m.version, inputs, m.outputs, requests);
          const wire = toNodeWire(outputs, false);
          channel.send({ type: 'result', id: m.id, outputs: wire.tensors }, wire.transfer);
        } catch (e) {
          channel.send({ type: 'error', id: m.id, error: errorReport(e) });
        }
        return;
      case 'lines':
        try {
          const { model, version } = m.task;
          const opened = await pipeline!.open(model, version);
          const answers = await answerLines(m.task, {
            version: opened.version,
            signature: opened.signature,
            maxBatchSize: opened.maxBatchSize,
            run: (inputs, outputs, requests) => pipeline!.run(model, version, inputs, outputs, requests),
          });
          channel.send({ type: 'answers', id: m.id, answers });
        } catch (e) {
          channel.send({ type: 'error', id: m.id, error: errorReport(e) });
        }
        return;
      case 'close':
        await pipeline?.close();
        channel.send({ type: 'closed' });
        return;
      case 'resolved':
        return;
    }
  };

  channel.onMessage((m) => {
    if (m.type === 'resolved') {
      const r = resolving.get(m.id);
      resolving.delete(m.id);
      if (m.spec) r?.resolve(m.spec);
      else r?.reject(new Error(m.error ?? 'model not found'));
      return;
    }
    chain = chain.then(() => handle(m));
  });
}
