import { decodeInferRequest, validateInputs, type DecodedInfer, type ModelSignature } from '@tandem/inference';
import { DomainException, mapException } from '@tandem/shared';

/** A repository model as the batch's lines are checked against it. */
export interface LineModel {
  name: string;
  version: string;
  signature: ModelSignature;
  maxBatchSize: number;
}

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

/** A line that is answered without running: the status and `{"error"}` body online would give. */
export interface LineFailure {
  kind: 'failed';
  line: number;
  customId: string | null;
  status: number;
  message: string;
}

export interface LineRequest {
  kind: 'request';
  line: number;
  customId: string;
  decoded: DecodedInfer;
  /** Rows of the batch dimension (1 for models without one). */
  rows: number;
}

export interface LineContext {
  endpoint: string;
  model: LineModel;
  /** Lines whose custom_id an earlier line already used. */
  duplicates: ReadonlySet<number>;
  /** The repository's answer for a model named in a `url` (throws its NotFound, as online does). */
  resolveModel(url: InferUrl): void;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * One input line → a request to run, or the error online would answer (status + message). The
 * body goes through the gateway's own decoder and the model's signature check, so messages match.
 */
export function parseRequestLine(text: string, line: number, ctx: LineContext): LineFailure | LineRequest {
  const fail = (status: number, message: string, customId: string | null = null): LineFailure => ({ kind: 'failed', line, customId, status, message });
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    return fail(400, `line ${line} is not valid JSON: ${(e as Error).message}`);
  }
  if (!isObj(obj)) return fail(400, `line ${line} must be a JSON object`);
  const customId = obj.custom_id;
  if (typeof customId !== 'string' || customId === '') return fail(400, 'custom_id must be a non-empty string');
  if (ctx.duplicates.has(line)) return fail(400, `duplicate custom_id "${customId.slice(0, 200)}": an earlier line uses it`, customId);
  if (obj.method !== 'POST') return fail(400, `method must be "POST" (got ${JSON.stringify(obj.method ?? null).slice(0, 40)})`, customId);
  if (typeof obj.url !== 'string') return fail(400, 'url must be a string', customId);
  const url = parseInferUrl(obj.url);
  if (!url) return fail(400, `url must be /v2/models/<model>/infer (got "${obj.url.slice(0, 200)}")`, customId);
  try {
    ctx.resolveModel(url);
  } catch (e) {
    const m = mapException(e);
    return fail(m.status, m.error, customId);
  }
  if (obj.url !== ctx.endpoint) return fail(400, `url "${obj.url.slice(0, 200)}" is not the batch's endpoint "${ctx.endpoint}"`, customId);
  try {
    const decoded = decodeInferRequest(url.model, url.version, obj.body);
    checkRequest(ctx.model, decoded);
    const rows = ctx.model.maxBatchSize > 0 ? (decoded.request.inputs[0]?.shape[0] ?? 1) : 1;
    return { kind: 'request', line, customId, decoded, rows };
  } catch (e) {
    const m = mapException(e);
    return fail(m.status, m.error, customId);
  }
}

/** What the engine checks before a request reaches the batcher (same order, same messages). */
function checkRequest(model: LineModel, d: DecodedInfer): void {
  const sig = model.signature;
  for (const o of d.request.outputs ?? []) {
    if (!sig.outputs.some((s) => s.name === o)) throw DomainException.invalid(`unknown output '${o}'; the model has ${sig.outputs.map((s) => `'${s.name}'`).join(', ')}`);
  }
  validateInputs(sig, model.maxBatchSize, d.request.inputs);
  // A JSONL line cannot carry the binary tensor extension's output section.
  for (const s of sig.outputs) {
    if ((d.request.outputs === undefined || d.request.outputs.includes(s.name)) && d.binaryOutput(s.name)) {
      throw DomainException.invalid(`output '${s.name}' asks for binary_data: a batch output line is JSON only`);
    }
  }
}
