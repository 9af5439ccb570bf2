/**
 * Recycled ArrayBuffers in power-of-two size classes. Every fresh ArrayBuffer counts as V8
 * external memory, and external memory is what triggers the gateway's young-generation GCs under
 * load ("external memory pressure": a scavenge every ~100 ms at saturation), which promote
 * in-flight requests and bring on the Mark-Compacts whose pauses show in online p99
 * (docs/benchmarks.md). Blocks above the launcher's 128 KiB mmap threshold also cost a page fault
 * per 4 KiB page on first touch and an munmap when collected: a fresh 1.8 MB batch tensor, filled,
 * ~1 ms of CPU against ~55 µs for a recycled one. A buffer given back is reused; one never given
 * back is simply collected.
 */
export class BufferPool {
  /** Free buffers by size class (a power of two). */
  private readonly free = new Map<number, ArrayBuffer[]>();
  /** Buffers handed out and not yet given back: a second give, or a foreign buffer, is ignored. */
  private readonly out = new WeakSet<ArrayBuffer>();
  /** Buffers in `free`: adopting one of them again would hand it out twice. */
  private readonly idle = new WeakSet<ArrayBuffer>();
  private freeBytes = 0;

  /**
   * @param maxFreeBytes most bytes kept free (beyond, given-back buffers are left to the GC)
   * @param minBytes smallest size class; @param maxBytes larger buffers are allocated as they come
   */
  constructor(
    private readonly maxFreeBytes = 64 * 1024 * 1024,
    private readonly minBytes = 4096,
    private readonly maxBytes = 16 * 1024 * 1024,
  ) {}

  /** An ArrayBuffer of at least `bytes` bytes (exactly `bytes` when larger than the pool serves). Not zeroed when recycled. */
  take(bytes: number): ArrayBuffer {
    if (bytes > this.maxBytes) return new ArrayBuffer(bytes);
    const size = this.classOf(bytes);
    const ab = this.free.get(size)?.pop();
    if (ab) {
      this.freeBytes -= size;
      this.idle.delete(ab);
    }
    const buf = ab ?? new ArrayBuffer(size);
    this.out.add(buf);
    return buf;
  }

  /** Whether `ab` is handed out by this pool and not yet given back. */
  owns(ab: ArrayBufferLike): boolean {
    return ab instanceof ArrayBuffer && this.out.has(ab);
  }

  /** Returns a buffer from take(); anything else, or the same buffer twice, is ignored. */
  give(ab: ArrayBufferLike): void {
    if (!(ab instanceof ArrayBuffer) || !this.out.has(ab)) return;
    this.out.delete(ab);
    this.keep(ab);
  }

  /**
   * Takes in a buffer that came back from another thread by transfer (a pooled buffer moved there
   * and back is a new object here, so give() would not know it). A transferred buffer has one
   * owner by construction; only sizes of a class this pool serves are kept.
   */
  adopt(ab: ArrayBufferLike): void {
    if (!(ab instanceof ArrayBuffer) || this.out.has(ab) || this.idle.has(ab)) return;
    const n = ab.byteLength;
    if (n < this.minBytes || n > this.maxBytes || (n & (n - 1)) !== 0) return;
    this.keep(ab);
  }

  /** Bytes held free now. */
  get idleBytes(): number {
    return this.freeBytes;
  }

  private keep(ab: ArrayBuffer): void {
    if (ab.byteLength === 0 || this.freeBytes + ab.byteLength > this.maxFreeBytes) return; // detached, or enough kept
    let list = this.free.get(ab.byteLength);
    if (!list) this.free.set(ab.byteLength, (list = []));
    list.push(ab);
    this.idle.add(ab);
    this.freeBytes += ab.byteLength;
  }

  private classOf(bytes: number): number {
    let size = this.minBytes;
    while (size < bytes) size *= 2;
    return size;
  }
}
