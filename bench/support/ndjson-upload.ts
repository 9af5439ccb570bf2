import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';

/**
 * Child process of bench:hybrid: streams `count` generated NDJSON items to a batch submit URL
 * and prints the response JSON (BENCH_KEY: the API key to send). `u8`: 64 distinct 3×48×192 8-bit images (`{"u8": base64}`);
 * `burn`: 16-float arrays for the generated `burn` model.
 */
async function main(): Promise<void> {
  const [url, countArg, kind] = process.argv.slice(2);
  const count = Number(countArg);
  const variants = Array.from({ length: 64 }, (_, v) =>
    kind === 'burn'
      ? `${JSON.stringify(Array.from({ length: 16 }, (_, j) => ((v * 16 + j) % 97) / 97 - 0.5))}\n`
      : `${JSON.stringify({ u8: randomBytes(3 * 48 * 192).toString('base64') })}\n`,
  );
  const res = await fetch(url!, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson', ...(process.env.BENCH_KEY ? { authorization: `Bearer ${process.env.BENCH_KEY}` } : {}) },
    body: Readable.toWeb(Readable.from((function* () {
      for (let i = 0; i < count; i++) yield variants[i % 64]!;
    })())) as ReadableStream,
    duplex: 'half',
  } as RequestInit);
  const text = await res.text();
  if (res.status !== 201) throw new Error(`batch submit: ${res.status} ${text}`);
  process.stdout.write(text);
}

main().catch((e: unknown) => {
  process.stderr.write(`ndjson-upload: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
