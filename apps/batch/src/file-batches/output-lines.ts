import type { OipInferResponse } from '@tandem/inference';

/** Deterministic per (batch, line): a retried chunk writes byte-identical lines. */
export function requestIds(batchId: string, line: number): { id: string; requestId: string } {
  const hex = batchId.replace(/-/g, '');
  const n = line.toString(16).padStart(8, '0');
  return { id: `batch_req_${hex}${n}`, requestId: `req_${hex}${n}` };
}

/** An output file line (OpenAI's shape; `body` is the OIP response the online endpoint would give). */
export function outputLine(batchId: string, line: number, customId: string, body: OipInferResponse): string {
  const { id, requestId } = requestIds(batchId, line);
  return `${JSON.stringify({ id, custom_id: customId, response: { status_code: 200, request_id: requestId, body }, error: null })}\n`;
}

/** outputLine with the body already JSON text (encoded in a unit): the same bytes, without parsing it back. */
export function outputLineJson(batchId: string, line: number, customId: string, bodyJson: string): string {
  const { id, requestId } = requestIds(batchId, line);
  return `{"id":${JSON.stringify(id)},"custom_id":${JSON.stringify(customId)},"response":{"status_code":200,"request_id":${JSON.stringify(requestId)},"body":${bodyJson}},"error":null}\n`;
}

/** An error file line for a request answered with an error status (the body online would give) and its input line. */
export function errorLine(batchId: string, line: number, customId: string | null, status: number, message: string): string {
  const { id, requestId } = requestIds(batchId, line);
  return `${JSON.stringify({ id, custom_id: customId, response: { status_code: status, request_id: requestId, body: { error: message } }, error: null, line })}\n`;
}

/** An error file line for a request never answered (expired, cancelled, its chunk failed): OpenAI's `error` object. */
export function unansweredLine(batchId: string, line: number, customId: string | null, code: string, message: string): string {
  const { id } = requestIds(batchId, line);
  return `${JSON.stringify({ id, custom_id: customId, response: null, error: { code, message }, line })}\n`;
}
