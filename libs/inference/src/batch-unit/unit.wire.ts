import type { InferenceSession } from 'onnxruntime-node';
import type { OipDatatype, Tensor } from '@tandem/sdk';
import type { CompiledModule } from '../../../shared/src/user-code/user-module';
import type { ModelConfig } from '../model-config';
import type { LogLevel, NodeWireTensor, WireError } from '../node-backend/node-replica.wire';
import type { DevicePlacement } from '../session-factory';
import type { ModelSignature } from '../tensor';
import type { UnitLineAnswer, UnitLinesTask } from './unit-lines';

/** One model input as batch items carry it: its datatype and its shape without the batch dimension. */
export interface UnitItemInput {
  name: string;
  datatype: OipDatatype;
  itemShape: number[];
  /** Elements of one item (the product of itemShape). */
  perItem: number;
}

/**
 * Turns raw items (as the batch stores them) into the model's input tensors, batch dimension
 * first. Runs inside the unit, so it must be self-contained: it is shipped as source.
 */
export type UnitItemsDecoder = (items: readonly unknown[], inputs: readonly UnitItemInput[]) => Tensor[];

/** A repository model as a unit opens it; the parent resolves names against the repository. */
export type UnitModelSpec =
  | { backend: 'onnxruntime'; name: string; version: string; path: string; config: ModelConfig; sessionOptions: InferenceSession.SessionOptions }
  | {
      backend: 'node';
      name: string;
      version: string;
      path: string;
      config: ModelConfig;
      signature: ModelSignature;
      module: CompiledModule;
      modulePaths: string[];
      /** For the model's ctx.session(file). */
      sessionOptions: InferenceSession.SessionOptions;
    };

/** A model opened in a unit: what the parent needs to plan items for it. */
export interface UnitOpened {
  name: string;
  version: string;
  signature: ModelSignature;
  maxBatchSize: number;
}

/** Parent → unit. */
export type ToUnit =
  | { type: 'init'; placement: DevicePlacement; decodeSource?: string }
  | { type: 'open'; id: number; model: string; version?: string }
  | {
      type: 'run';
      id: number;
      model: string;
      version?: string;
      /** Raw items the unit decodes into `itemInputs` (as values, or as `itemCount` NDJSON lines it parses itself), or ready tensors. */
      items?: readonly unknown[];
      ndjson?: Uint8Array;
      itemCount?: number;
      itemInputs?: UnitItemInput[];
      inputs?: NodeWireTensor[];
      outputs?: string[];
    }
  /** Raw lines of an OpenAI-style batch file, answered in the unit. */
  | { type: 'lines'; id: number; task: UnitLinesTask }
  | { type: 'resolved'; id: number; spec?: UnitModelSpec; error?: string }
  | { type: 'close' };

/** Unit → parent. */
export type FromUnit =
  | { type: 'ready' }
  | { type: 'opened'; id: number; model: UnitOpened }
  | { type: 'result'; id: number; outputs: NodeWireTensor[] }
  | { type: 'answers'; id: number; answers: UnitLineAnswer[] }
  | { type: 'error'; id: number; error: WireError }
  | { type: 'resolve'; id: number; model: string; version?: string }
  | { type: 'log'; level: LogLevel; msg: string; fields?: Record<string, unknown> }
  | { type: 'closed' };

/** How the unit entry talks to its parent, whichever carries it (a child process's IPC or a worker's port). */
export interface UnitChannel {
  send(m: FromUnit, transfer?: ArrayBuffer[]): void;
  onMessage(fn: (m: ToUnit) => void): void;
}
