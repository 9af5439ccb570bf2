import type { Readable } from 'node:stream';

/**
 * The chunks of a byte stream, pulled as the consumer asks (backpressure kept). Unlike
 * `for await` over the stream itself, stopping early leaves the stream paused instead of
 * destroying it: destroying a request destroys its socket before the 4xx can be written.
 */
export async function* chunksOf(stream: Readable): AsyncGenerator<Buffer> {
  for (;;) {
    const c = stream.read() as Buffer | string | null;
    if (c !== null) {
      yield typeof c === 'string' ? Buffer.from(c) : c;
      continue;
    }
    if (stream.readableEnded) return;
    if (stream.destroyed) throw stream.errored ?? new Error('the request was aborted');
    await new Promise<void>((resolve, reject) => {
      const wake = (): void => {
        cleanup();
        resolve();
      };
      const fail = (e: Error): void => {
        cleanup();
        reject(e);
      };
      const cleanup = (): void => {
        stream.off('readable', wake);
        stream.off('end', wake);
        stream.off('close', wake);
        stream.off('error', fail);
      };
      stream.on('readable', wake);
      stream.on('end', wake);
      stream.on('close', wake);
      stream.on('error', fail);
    });
  }
}
