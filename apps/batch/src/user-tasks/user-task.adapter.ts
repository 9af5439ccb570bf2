import type { Logger, ReducerDefinition, TaskDefinition } from '@tandem/sdk';
import type { PinoLogger } from '@tandem/shared';
import type { Reducer } from '../reducers/reducer';
import type { BatchTask } from '../tasks/batch-task';
import { serializeOutputs } from '../batches/outputs-json';

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function isThenable(v: unknown): boolean {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

/**
 * Outputs and partials are stored as JSON. Checked here, inside the attempt, so a BigInt or a
 * cycle fails the chunk (retried, then dead-lettered) instead of the commit that follows it.
 */
function assertJson(value: unknown, what: string): void {
  try {
    JSON.stringify(value);
  } catch (e) {
    throw new Error(`${what} cannot be stored as JSON: ${messageOf(e)}`);
  }
}

/** A user's `defineTask` as the registry's BatchTask: name from the file, no model. */
export function adaptTask(name: string, def: TaskDefinition): BatchTask {
  return {
    name,
    needsModel: false,
    validateItem(item: unknown): string | null {
      if (!def.validateItem) return null;
      let why: unknown;
      try {
        why = def.validateItem(item);
      } catch (e) {
        // An InputError (or any throw) from validateItem is an invalid item, with its message.
        return messageOf(e) || 'invalid item';
      }
      if (why === null || why === undefined) return null;
      if (typeof why === 'string') return why || 'invalid item';
      if (isThenable(why)) return `task ${name}: validateItem must be synchronous (it returned a Promise)`;
      return `task ${name}: validateItem returned ${typeof why}; expected a reason string or null`;
    },
    async run(items, ctx) {
      const outputs: unknown = await def.run(items, { batchId: ctx.batchId, chunk: ctx.chunk, attempt: ctx.attempt, signal: ctx.signal, log: ctx.log });
      if (!Array.isArray(outputs)) throw new Error(`task ${name} returned ${outputs === null ? 'null' : typeof outputs}, not an array of outputs`);
      serializeOutputs(outputs, `task ${name}'s outputs`);
      return outputs;
    },
  };
}

/** A user's `defineReducer` as a Reducer; partials and results are checked to be JSON. */
export function adaptReducer(name: string, def: ReducerDefinition): Reducer {
  const sync = <T>(v: T, step: string): T => {
    if (isThenable(v)) throw new Error(`reducer ${name}: ${step} must be synchronous (it returned a Promise)`);
    return v;
  };
  return {
    name,
    empty: () => sync(def.empty(), 'empty'),
    partial: (outputs) => {
      const p = sync(def.partial(outputs), 'partial');
      assertJson(p, `reducer ${name}'s partial`);
      return p;
    },
    combine: (a, b) => sync(def.combine(a, b), 'combine'),
    finalize: (p) => {
      const r = sync(def.finalize(p), 'finalize');
      assertJson(r, `reducer ${name}'s result`);
      return r;
    },
  };
}

/**
 * The SDK's Logger over pino (`log.info(msg, fields)` → `pino.info(fields, msg)`). The child is
 * made on the first call: most chunks never log, and a child per chunk is not free.
 */
export function sdkLogger(parent: PinoLogger, bindings: Record<string, unknown>): Logger {
  let child: PinoLogger | undefined;
  const at =
    (level: 'debug' | 'info' | 'warn' | 'error') =>
    (msg: string, fields?: Record<string, unknown>): void => {
      child ??= parent.child(bindings);
      if (fields) child[level](fields, msg);
      else child[level](msg);
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
