/**
 * Recycled ArrayBuffers for request bodies. Every fresh ArrayBuffer counts as V8 external
 * memory, and external memory is what triggers the gateway's young-generation GCs under load
 * ("external memory pressure": a scavenge every ~100 ms at saturation, every ~0.5 s at 40 %),
 * which promote in-flight requests and bring on the Mark-Compacts whose pauses show in online
 * p99 (docs/benchmarks.md). A body taken from here goes back once nothing reads it any more:
 * its request's inference settled (the batcher copies inputs when it dispatches them, and drops
 * a request that expires while queued). A body never given back is simply collected.
 */
export class BodyPool {
  /** Free buffers by size class (a power of two). */
  private readonly free = new Map<number, ArrayBuffer[]>();
  /** Buffers handed out and not yet given back: a second give, or a foreign buffer, is ignored. */
  private readonly out = new WeakSet<ArrayBuffer>();
  private freeBytes = 0;

  /**
   * @param maxFreeBytes most bytes kept free (beyond, given-back buffers are left to the GC)
   * @param minBytes smallest size class; @param maxBytes larger bodies are allocated as they come
   */
  constructor(
    private readonly maxFreeBytes = 64 * 1024 * 1024,
    private readonly minBytes = 4096,
    private readonly maxBytes = 16 * 1024 * 1024,
  ) {}

  /** An ArrayBuffer of at least `bytes` bytes (exactly `bytes` when larger than the pool serves). */
  take(bytes: number): ArrayBuffer {
    if (bytes > this.maxBytes) return new ArrayBuffer(bytes);
    const size = this.classOf(bytes);
    const ab = this.free.get(size)?.pop();
    if (ab) this.freeBytes -= size;
    const buf = ab ?? new ArrayBuffer(size);
    this.out.add(buf);
    return buf;
  }

  /** Returns a buffer from take(); anything else, or the same buffer twice, is ignored. */
  give(ab: ArrayBufferLike): void {
    if (!(ab instanceof ArrayBuffer) || !this.out.has(ab)) return;
    this.out.delete(ab);
    if (ab.byteLength === 0 || this.freeBytes + ab.byteLength > this.maxFreeBytes) return; // detached, or enough kept
    let list = this.free.get(ab.byteLength);
    if (!list) this.free.set(ab.byteLength, (list = []));
    list.push(ab);
    this.freeBytes += ab.byteLength;
  }

  /** Bytes held free now. */
  get idleBytes(): number {
    return this.freeBytes;
  }

  private classOf(bytes: number): number {
    let size = this.minBytes;
    while (size < bytes) size *= 2;
    return size;
  }
}

/** The gateway's one pool of REST binary request bodies (binary-body.reader.ts takes, oip-infer.route.ts gives back). */
export const requestBodies = new BodyPool();
