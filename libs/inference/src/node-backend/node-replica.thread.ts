/**
 * Entry of a node model's replica thread: the worker_threads transport around the host
 * (node-model.host.ts). NodeReplicaThread compiles this file with compileUserModule and the
 * thread evaluates it with evaluateUserModule, so the same file serves vitest's TypeScript
 * sources and dist/ alike. Its default export is called once with the worker's data and port.
 */
import type { MessagePort } from 'node:worker_threads';
import type { InferenceSession } from 'onnxruntime-node';
import type { Placement, Tensor } from '@tandem/sdk';
import type { CompiledModule } from '../../../shared/src/user-code/user-module';
import type { TensorSpec } from '../tensor';
import { errorFromReport, errorReport, startModelHost, type ModelHost } from './node-model.host';
import { fromNodeWire, toNodeWire, type FromNodeThread, type ToNodeThread } from './node-replica.wire';

/** workerData of a replica thread. */
export interface NodeThreadData {
  /** The user's model, compiled by the parent. */
  model: CompiledModule;
  modulePaths: string[];
  name: string;
  version: string;
  dir: string;
  placement: Placement;
  sessionOptions: InferenceSession.SessionOptions;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  maxBatchSize: number;
}

export default function runNodeReplicaThread(data: NodeThreadData, port: MessagePort): void {
  const send = (m: FromNodeThread, transfer: ArrayBuffer[] = []): void => port.postMessage(m, transfer);
  const calls = new Map<number, { resolve: (o: Record<string, Tensor>) => void; reject: (e: Error) => void }>();
  let seq = 0;
  let host: ModelHost | undefined;

  const started = startModelHost({
    module: data.model,
    modulePaths: data.modulePaths,
    name: data.name,
    version: data.version,
    dir: data.dir,
    placement: data.placement,
    sessionOptions: data.sessionOptions,
    inputs: data.inputs,
    outputs: data.outputs,
    maxBatchSize: data.maxBatchSize,
    log: (level, msg, fields) => send({ type: 'log', level, msg, ...(fields ? { fields } : {}) }),
    infer: (model, inputs, opts) =>
      new Promise((resolve, reject) => {
        const id = ++seq;
        calls.set(id, { resolve, reject });
        // The model may keep using its tensors: they are copied, not moved, unless it gave them
        // away (`transfer`: whole buffers are moved; views of a larger buffer are still copied).
        const wire = toNodeWire(inputs, opts.transfer === true);
        send(
          {
            type: 'infer',
            id,
            model,
            version: opts.version,
            inputs: wire.tensors,
            outputs: opts.outputs ? [...opts.outputs] : undefined,
            timeoutMs: opts.timeoutMs,
          },
          wire.transfer,
        );
      }),
  });

  started.then(
    (h) => {
      host = h;
      send({ type: 'ready', warmup: h.warmup });
    },
    (e: unknown) => send({ type: 'init-error', error: errorReport(e) }),
  );

  port.on('message', (m: ToNodeThread) => {
    switch (m.type) {
      case 'execute': {
        if (!host) {
          send({ type: 'error', id: m.id, error: { input: false, message: 'the model is not initialized' } });
          return;
        }
        host.execute(fromNodeWire(m.inputs), { requests: m.requests, deadlineAt: m.deadlineAt, warmup: m.warmup, outputs: m.outputs }).then(
          (outputs) => {
            // The model may hold on to what it returned (a cached tensor): copy, never move.
            const wire = toNodeWire(outputs, false);
            send({ type: 'result', id: m.id, outputs: wire.tensors }, wire.transfer);
          },
          (e: unknown) => send({ type: 'error', id: m.id, error: errorReport(e) }),
        );
        return;
      }
      case 'infer-result':
      case 'infer-error': {
        const c = calls.get(m.id);
        calls.delete(m.id);
        if (m.type === 'infer-result') c?.resolve(Object.fromEntries(fromNodeWire(m.outputs).map((t) => [t.name, t])));
        else c?.reject(errorFromReport(m.error));
        return;
      }
      case 'finalize': {
        const done = (): void => send({ type: 'finalized' });
        void started
          .then(
            (h) => h.finalize(),
            () => undefined,
          )
          .then(done, done);
        return;
      }
    }
  });
}
