import { isInputError } from '@tandem/sdk';
// Relative, not '@tandem/shared': this file is bundled into every unit process, which should not load Nest.
import { DomainException } from '../../../shared/src/errors/domain.exception';
import { HTTP_STATUS_BY_CODE } from '../../../shared/src/errors/error-code.enum';
import { concatInputs, scatterOutputs, shapeKey } from '../batch-merge';
import { validateInputs } from '../input-validation';
import { decodeInferRequest, type DecodedInfer } from '../oip/oip-decode';
import { encodeInferResponse } from '../oip/oip-encode';
import type { InferTensor, ModelSignature } from '../tensor';
import { NotFast, NumArray, TensorJsonReader } from './tensor-json';

/** An OIP infer URL: `/v2/models/<m>/infer` or `/v2/models/<m>/versions/<v>/infer`. */
export interface InferUrl {
  model: string;
  version?: string;
}

const URL_RE = /^\/v2\/models\/([^/?#]+)(?:\/versions\/([^/?#]+))?\/infer$/;

export function parseInferUrl(url: string): InferUrl | null {
  const m = URL_RE.exec(url);
  if (!m) return null;
  let model: string;
  let version: string | undefined;
  try {
    model = decodeURIComponent(m[1]!);
    version = m[2] === undefined ? undefined : decodeURIComponent(m[2]);
  } catch {
    return null;
  }
  return version === undefined ? { model } : { model, version };
}

/**
 * Lines of an OpenAI-style batch input file for one unit: their raw bytes, answered in the unit
 * (parse, check, merge into model batches, run, encode), so the batch app only moves bytes.
 */
export interface UnitLinesTask {
  /** The batch's endpoint (every line's `url` must equal it) and the model it names. */
  endpoint: string;
  model: string;
  version?: string;
  /** The lines' bytes, back to back. */
  data: Uint8Array;
  /** Per line: its 1-based number in the file and where it ends in `data` (it starts where the previous one ended). */
  lines: number[];
  ends: number[];
  /** Lines here whose custom_id an earlier line of the file already used. */
  duplicates: number[];
  /** Rows per model batch at most (the model's max_batch_size and the worker's infer batch). */
  maxRows: number;
}

/**
 * A line's answer: 200 with the OIP response body as JSON text; the status and message online
 * would give; or a `url` other than the endpoint, which the parent answers (it holds the
 * repository, and an unknown model there is online's 404, not a 400).
 */
export type UnitLineAnswer =
  | { line: number; customId: string; body: string }
  | { line: number; customId: string | null; status: number; message: string }
  | { line: number; customId: string; url: string };

/** What the unit runs a line's model with (its UnitPipeline model). */
export interface LinesModel {
  version: string;
  signature: ModelSignature;
  maxBatchSize: number;
  /** `requests`: the rows of each request merged into `inputs` (a node model's ExecuteInfo.requests). */
  run(inputs: readonly InferTensor[], outputs: readonly string[] | undefined, requests: readonly number[]): Promise<InferTensor[]>;
}

export interface LinesOptions {
  /** false: every line through JSON.parse and the gateway's JSON decoder (the reference the fast path must match). */
  fastJson?: boolean;
}

interface Decoded {
  line: number;
  customId: string;
  decoded: DecodedInfer;
  rows: number;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The status and message online gives for an error (the gateway's mapException, for what decoding throws). */
function statusOf(e: unknown): { status: number; message: string } {
  if (e instanceof DomainException) return { status: HTTP_STATUS_BY_CODE[e.code], message: e.message };
  return { status: 500, message: 'internal error' };
}

const utf8 = new TextDecoder('utf-8');

/**
 * Answers every line of `task` in order: lines that fail their checks as online would answer
 * them, the rest run as model batches (same trailing shapes and outputs, up to maxRows rows);
 * a batch the model blames on its input (InputError) is rerun one request at a time so only
 * the culprit gets the 400. Any other failure (the model, the unit) throws: the chunk is retried.
 */
export async function answerLines(task: UnitLinesTask, model: LinesModel, opts: LinesOptions = {}): Promise<UnitLineAnswer[]> {
  const answers = new Map<number, UnitLineAnswer>();
  const requests: Decoded[] = [];
  const dup = new Set(task.duplicates);
  // One arena for the call's FP32 tensors: consecutive lines' tensors lie back to back, so a model batch is a view of it.
  const reader = opts.fastJson === false ? null : new TensorJsonReader(new Float32Array(TensorJsonReader.arenaFor(task.data.length)));
  let start = 0;
  task.lines.forEach((line, i) => {
    const end = task.ends[i]!;
    const bytes = task.data.subarray(start, end);
    start = end;
    const r = decodeLine(bytes, line, task, model, dup, reader);
    if ('decoded' in r) requests.push(r);
    else answers.set(line, r);
  });
  const encode = (r: Decoded, outputs: InferTensor[]): UnitLineAnswer => {
    const header = encodeInferResponse(
      { model: task.model, version: model.version, outputs, queueMs: 0, computeMs: 0, batchItems: 1 },
      r.decoded.id,
      () => false,
    ).header;
    return { line: r.line, customId: r.customId, body: JSON.stringify(header) };
  };
  const runOne = async (group: Decoded[]): Promise<InferTensor[][]> => {
    const outputs = group[0]!.decoded.request.outputs;
    if (model.maxBatchSize === 0) return [await model.run(group[0]!.decoded.request.inputs, outputs, [1])];
    const rows = group.map((r) => r.rows);
    const out = await model.run(mergeInputs(group.map((r) => r.decoded.request.inputs)), outputs, rows);
    return scatterOutputs(out, rows);
  };
  for (const group of plan(model, requests, task.maxRows)) {
    try {
      const outs = await runOne(group);
      group.forEach((r, i) => answers.set(r.line, encode(r, outs[i]!)));
    } catch (e) {
      if (!isInputError(e)) throw e;
      // The model blamed the input: find which request, one at a time (online each is its own request).
      for (const r of group) {
        try {
          answers.set(r.line, encode(r, (await runOne([r]))[0]!));
        } catch (e1) {
          if (!isInputError(e1)) throw e1;
          answers.set(r.line, { line: r.line, customId: r.customId, status: 400, message: e1.message });
        }
      }
    }
  }
  return task.lines.map((l) => answers.get(l)!);
}

/** Model batches: same shape key and outputs, up to maxRows rows; unbatched models run one request each. */
function plan(model: LinesModel, requests: readonly Decoded[], maxRowsAsked: number): Decoded[][] {
  if (model.maxBatchSize === 0) return requests.map((r) => [r]);
  const maxRows = Math.max(1, Math.min(model.maxBatchSize, maxRowsAsked));
  const open = new Map<string, { reqs: Decoded[]; rows: number }>();
  const out: Decoded[][] = [];
  for (const r of requests) {
    const key = `${shapeKey(r.decoded.request.inputs)}|${(r.decoded.request.outputs ?? []).join(',')}`;
    let g = open.get(key);
    if (g && g.rows + r.rows > maxRows) {
      out.push(g.reqs);
      g = undefined;
    }
    if (!g) open.set(key, (g = { reqs: [], rows: 0 }));
    g.reqs.push(r);
    g.rows += r.rows;
  }
  for (const g of open.values()) out.push(g.reqs);
  return out;
}

/**
 * One input line → a request to run, or the error online would answer (the gateway's decoder
 * and checks, so messages match). Fast path: FP32 JSON tensors are read straight into a
 * Float32Array (tensor-json) and decoded as the binary extension's bytes, which gives the same
 * tensors; a line that is anything else, or that fails, takes the plain path (JSON.parse, the
 * gateway's JSON decoding) and gets its answer there.
 */
function decodeLine(
  bytes: Uint8Array,
  line: number,
  task: UnitLinesTask,
  model: LinesModel,
  dup: ReadonlySet<number>,
  reader: TensorJsonReader | null,
): Decoded | UnitLineAnswer {
  const mark = reader?.used ?? 0;
  let fast: unknown;
  try {
    fast = reader?.parse(bytes);
  } catch (e) {
    if (!(e instanceof NotFast)) throw e;
  }
  if (reader && fast !== undefined) {
    const lifted = liftTensors(fast);
    if (lifted) {
      const r = decodeObject(lifted.obj, line, task, model, dup, lifted.binary);
      if ('decoded' in r) return r;
    }
    reader.used = mark; // its values are not used: keep the arena back to back
  }
  let obj: unknown;
  try {
    obj = JSON.parse(utf8.decode(bytes).trim());
  } catch (e) {
    return { line, customId: null, status: 400, message: `line ${line} is not valid JSON: ${(e as Error).message}` };
  }
  return decodeObject(obj, line, task, model, dup);
}

/**
 * A fast-read line whose only NumArrays are FP32 inputs' `data` (no `parameters`, as many
 * values as the shape holds) → the same request with those inputs as binary_data_size and their
 * values (already rounded to FP32, as the JSON decoder stores them) as its binary section: a view
 * of the arena where they lie back to back (they are read in input order), else a copy; else null.
 */
function liftTensors(v: unknown): { obj: Record<string, unknown>; binary: Buffer } | null {
  if (!isObj(v) || !isObj(v.body) || !Array.isArray(v.body.inputs)) return null;
  const parts: NumArray[] = [];
  const inputs = v.body.inputs.map((raw: unknown) => {
    if (!isObj(raw) || !(raw.data instanceof NumArray)) return raw;
    const n = raw.data.length;
    if (raw.datatype !== 'FP32' || raw.parameters !== undefined || !Array.isArray(raw.shape)) return null;
    const count = raw.shape.reduce((a: number, d: unknown) => (typeof d === 'number' ? a * d : NaN), 1);
    if (count !== n) return null;
    parts.push(raw.data);
    return { name: raw.name, datatype: raw.datatype, shape: raw.shape, parameters: { binary_data_size: n * 4 } };
  });
  if (inputs.includes(null) || hasNumArray({ ...v, body: { ...v.body, inputs: [] } }) || inputs.some((x: unknown) => x !== null && hasNumArray(x))) return null;
  const total = parts.reduce((a, p) => a + p.length, 0);
  const first = parts[0];
  let end = first?.offset ?? 0;
  for (const p of parts) end = first && p.arena === first.arena && p.offset === end ? end + p.length : -1;
  let f32: Float32Array;
  if (first && end >= 0) f32 = first.arena.subarray(first.offset, end);
  else {
    f32 = new Float32Array(total);
    let off = 0;
    for (const p of parts) {
      f32.set(p.values, off);
      off += p.length;
    }
  }
  return { obj: { ...v, body: { ...v.body, inputs } }, binary: Buffer.from(f32.buffer, f32.byteOffset, f32.byteLength) };
}

/**
 * The requests' inputs merged along dim 0: where each input's parts are FP32 views lying back to
 * back in one buffer (consecutive lines read into one arena), a view over them; else a copy (concatInputs).
 */
function mergeInputs(requests: readonly (readonly InferTensor[])[]): InferTensor[] {
  if (requests.length === 1) return [...requests[0]!];
  const merged: InferTensor[] = [];
  for (const t of requests[0]!) {
    const parts = requests.map((r) => r.find((x) => x.name === t.name)!);
    const first = t.data;
    if (!(first instanceof Float32Array)) return concatInputs(requests);
    let end = first.byteOffset;
    for (const p of parts) {
      if (!(p.data instanceof Float32Array) || p.data.buffer !== first.buffer || p.data.byteOffset !== end) return concatInputs(requests);
      end += p.data.byteLength;
    }
    const data = new Float32Array(first.buffer, first.byteOffset, (end - first.byteOffset) / 4);
    merged.push({ name: t.name, datatype: t.datatype, shape: [parts.reduce((s, p) => s + p.shape[0]!, 0), ...t.shape.slice(1)], data });
  }
  return merged;
}

function hasNumArray(v: unknown): boolean {
  if (v instanceof NumArray) return true;
  if (Array.isArray(v)) return v.some(hasNumArray);
  if (isObj(v)) return Object.values(v).some(hasNumArray);
  return false;
}

function decodeObject(obj: unknown, line: number, task: UnitLinesTask, model: LinesModel, dup: ReadonlySet<number>, binary?: Buffer): Decoded | UnitLineAnswer {
  const fail = (status: number, message: string, customId: string | null = null): UnitLineAnswer => ({ line, customId, status, message });
  if (!isObj(obj)) return fail(400, `line ${line} must be a JSON object`);
  const customId = obj.custom_id;
  if (typeof customId !== 'string' || customId === '') return fail(400, 'custom_id must be a non-empty string');
  if (dup.has(line)) return fail(400, `duplicate custom_id "${customId.slice(0, 200)}": an earlier line uses it`, customId);
  if (obj.method !== 'POST') return fail(400, `method must be "POST" (got ${JSON.stringify(obj.method ?? null).slice(0, 40)})`, customId);
  if (typeof obj.url !== 'string') return fail(400, 'url must be a string', customId);
  const url = parseInferUrl(obj.url);
  if (!url) return fail(400, `url must be /v2/models/<model>/infer (got "${obj.url.slice(0, 200)}")`, customId);
  if (obj.url !== task.endpoint) return { line, customId, url: obj.url };
  try {
    const decoded = decodeInferRequest(url.model, url.version, obj.body, binary);
    checkRequest(model, decoded);
    const rows = model.maxBatchSize > 0 ? (decoded.request.inputs[0]?.shape[0] ?? 1) : 1;
    return { line, customId, decoded, rows };
  } catch (e) {
    const m = statusOf(e);
    return fail(m.status, m.message, customId);
  }
}

/** What the engine checks before a request reaches the batcher (same order, same messages). */
function checkRequest(model: LinesModel, d: DecodedInfer): void {
  const sig = model.signature;
  for (const o of d.request.outputs ?? []) {
    if (!sig.outputs.some((s) => s.name === o))
      throw DomainException.invalid(`unknown output '${o}'; the model has ${sig.outputs.map((s) => `'${s.name}'`).join(', ')}`);
  }
  validateInputs(sig, model.maxBatchSize, d.request.inputs);
  // A JSONL line cannot carry the binary tensor extension's output section.
  for (const s of sig.outputs) {
    if ((d.request.outputs === undefined || d.request.outputs.includes(s.name)) && d.binaryOutput(s.name)) {
      throw DomainException.invalid(`output '${s.name}' asks for binary_data: a batch output line is JSON only`);
    }
  }
}
