import type { NumericTypedArray, OipDatatype, Tensor } from '@tandem/sdk';
import { packBytes, unpackBytes, type PackedBytes } from '../runner-wire';
import { forPostMessage } from '../tensor-ownership';

/**
 * Messages between a node model's replica thread and the runner that owns it. Tensors travel
 * as NodeWireTensor: BYTES packed into one fresh buffer (a structured clone of a view would
 * copy the whole request body it points into), numbers as a typed array.
 */
export interface NodeWireTensor {
  name: string;
  datatype: OipDatatype;
  shape: number[];
  data: NumericTypedArray | PackedBytes;
}

/** How an error crosses the thread boundary: `input` = the model or a callee blamed the request (400). */
export interface WireError {
  input: boolean;
  message: string;
  stack?: string;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** To the thread. */
export type ToNodeThread =
  | { type: 'execute'; id: number; inputs: NodeWireTensor[]; outputs?: string[]; requests: number[]; deadlineAt?: number; warmup: boolean }
  | { type: 'infer-result'; id: number; outputs: NodeWireTensor[] }
  | { type: 'infer-error'; id: number; error: WireError }
  | { type: 'finalize' };

/** From the thread. */
export type FromNodeThread =
  | { type: 'ready'; warmup: boolean }
  | { type: 'init-error'; error: WireError }
  | { type: 'result'; id: number; outputs: NodeWireTensor[] }
  | { type: 'error'; id: number; error: WireError }
  | { type: 'log'; level: LogLevel; msg: string; fields?: Record<string, unknown> }
  | { type: 'infer'; id: number; model: string; version?: string; inputs: NodeWireTensor[]; outputs?: string[]; timeoutMs?: number }
  | { type: 'finalized' };

/**
 * Tensors for postMessage, and the buffers to transfer with them. `owned`: the caller gives the
 * typed arrays away (fresh batch buffers); otherwise views and large arrays are sliced first and
 * the copy moved, small whole arrays cloned, so a message never carries more than the tensor itself.
 */
export function toNodeWire(tensors: readonly Tensor[], owned: boolean): { tensors: NodeWireTensor[]; transfer: ArrayBuffer[] } {
  const transfer: ArrayBuffer[] = [];
  const out = tensors.map((t): NodeWireTensor => {
    if (Array.isArray(t.data)) {
      const packed = packBytes(t.data);
      transfer.push(packed.bytes.buffer as ArrayBuffer, packed.ends.buffer as ArrayBuffer);
      return { name: t.name, datatype: t.datatype, shape: [...t.shape], data: packed };
    }
    const { data, move } = forPostMessage(t.data as NumericTypedArray, owned);
    if (move && !transfer.includes(move)) transfer.push(move);
    return { name: t.name, datatype: t.datatype, shape: [...t.shape], data };
  });
  return { tensors: out, transfer };
}

export function fromNodeWire(tensors: readonly NodeWireTensor[]): Tensor[] {
  return tensors.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape, data: 'ends' in t.data ? unpackBytes(t.data) : t.data }));
}
