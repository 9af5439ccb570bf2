import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';

/**
 * Child process of bench:hybrid: streams `count` generated NDJSON items to a batch submit URL
 * and prints the response JSON (BENCH_KEY: the API key to send). `u8`: 64 distinct 3×48×192 8-bit images (`{"u8": base64}`);
 * `burn`: 16-float arrays for the generated `burn` model; `ints`: the integers 0..count-1, one per
 * line, sent in ~1 MB pieces (the 30 M score chord: per-line strings would make this process the bottleneck);
 * `oip`: a purpose=batch JSONL file of OIP requests to ppocr_cls (JSON tensors, 1 image each; the
 * URL is then /v1/files?purpose=batch).
 */
async function main(): Promise<void> {
  const [url, countArg, kind] = process.argv.slice(2);
  const count = Number(countArg);
  const variants = Array.from({ length: 64 }, (_, v) =>
    kind === 'burn'
      ? `${JSON.stringify(Array.from({ length: 16 }, (_, j) => ((v * 16 + j) % 97) / 97 - 0.5))}\n`
      : `${JSON.stringify({ u8: randomBytes(3 * 48 * 192).toString('base64') })}\n`,
  );
  if (kind === 'oip') {
    process.stdout.write(await send(url!, oipLines(count), 'application/x-ndjson', [200, 201]));
    return;
  }
  if (kind === 'ints') {
    process.stdout.write(await send(url!, intBlocks(count)));
    return;
  }
  const res = await fetch(url!, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson', ...(process.env.BENCH_KEY ? { authorization: `Bearer ${process.env.BENCH_KEY}` } : {}) },
    body: Readable.toWeb(
      Readable.from(
        (function* () {
          for (let i = 0; i < count; i++) yield variants[i % 64]!;
        })(),
      ),
    ) as ReadableStream,
    duplex: 'half',
  } as RequestInit);
  const text = await res.text();
  if (res.status !== 201) throw new Error(`batch submit: ${res.status} ${text}`);
  process.stdout.write(text);
}

function* intBlocks(count: number): Generator<Buffer> {
  for (let from = 0; from < count; from += 100_000) {
    const to = Math.min(count, from + 100_000);
    const parts = new Array<number>(to - from);
    for (let i = from; i < to; i++) parts[i - from] = i;
    yield Buffer.from(`${parts.join('\n')}\n`);
  }
}

/**
 * OIP requests with 16 distinct images of values in {-1, 0, 1} (short JSON: ~64 KB a line): the
 * JSON around each tensor is built once, only the custom_id changes.
 */
function* oipLines(count: number): Generator<string> {
  const tensors = Array.from({ length: 16 }, (_, v) => {
    const data = Array.from({ length: 3 * 48 * 192 }, (_, i) => ((i * 7 + v * 13) % 3) - 1);
    return `","method":"POST","url":"/v2/models/ppocr_cls/infer","body":{"inputs":[{"name":"x","shape":[1,3,48,192],"datatype":"FP32","data":[${data.join(',')}]}]}}\n`;
  });
  for (let i = 0; i < count; i++) yield `{"custom_id":"r${i}${tensors[i % 16]!}`;
}

/** A pull-driven body: the next piece is made only when fetch asks (Readable.toWeb buffered a 6.5 GB file into the heap). */
function pulled(body: Iterable<Buffer | string>): ReadableStream<Uint8Array> {
  const it = body[Symbol.iterator]();
  return new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        const n = it.next();
        if (n.done) controller.close();
        else controller.enqueue(typeof n.value === 'string' ? Buffer.from(n.value) : n.value);
      },
    },
    { highWaterMark: 8 },
  );
}

async function send(url: string, body: Iterable<Buffer | string>, type = 'application/x-ndjson', ok = [201]): Promise<string> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': type, ...(process.env.BENCH_KEY ? { authorization: `Bearer ${process.env.BENCH_KEY}` } : {}) },
    body: pulled(body),
    duplex: 'half',
  } as RequestInit);
  const text = await res.text();
  if (!ok.includes(res.status)) throw new Error(`upload: ${res.status} ${text}`);
  return text;
}

main().catch((e: unknown) => {
  process.stderr.write(`ndjson-upload: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
