/** Minimal OIP v2 REST client for tests and benchmarks (binary tensor data extension). */
export interface BinaryInferResult {
  status: number;
  header: { outputs?: { name: string; shape: number[]; datatype: string; parameters?: Record<string, unknown> }[]; error?: string };
  outputs: Buffer[];
}

export async function inferBinaryFp32(baseUrl: string, model: string, input: Float32Array, shape: number[], signal?: AbortSignal): Promise<BinaryInferResult> {
  const header = Buffer.from(
    JSON.stringify({
      inputs: [{ name: 'x', datatype: 'FP32', shape, parameters: { binary_data_size: input.byteLength } }],
      parameters: { binary_data_output: true },
    }),
  );
  const body = Buffer.concat([header, Buffer.from(input.buffer, input.byteOffset, input.byteLength)]);
  const res = await fetch(`${baseUrl}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
    body,
    signal,
  });
  const buf = Buffer.from(await res.arrayBuffer());
  const hlen = Number(res.headers.get('inference-header-content-length') ?? buf.length);
  const parsed = JSON.parse(buf.subarray(0, hlen).toString()) as BinaryInferResult['header'];
  const outputs: Buffer[] = [];
  let off = hlen;
  for (const o of parsed.outputs ?? []) {
    const size = Number(o.parameters?.binary_data_size ?? 0);
    outputs.push(buf.subarray(off, off + size));
    off += size;
  }
  return { status: res.status, header: parsed, outputs };
}
