/** A fixed-capacity FIFO: pushing onto a full ring drops the oldest entry. */
export class Ring<T> {
  private readonly items: (T | undefined)[];
  private next = 0;
  private size = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`ring capacity must be a positive integer, got ${capacity}`);
    this.items = new Array<T | undefined>(capacity);
  }

  push(item: T): void {
    this.items[this.next] = item;
    this.next = (this.next + 1) % this.capacity;
    this.size = Math.min(this.capacity, this.size + 1);
  }

  get length(): number {
    return this.size;
  }

  /** The newest entry, undefined when empty. */
  last(): T | undefined {
    return this.size === 0 ? undefined : this.items[(this.next + this.capacity - 1) % this.capacity];
  }

  /** Entries oldest first. */
  toArray(): T[] {
    const out: T[] = [];
    const start = (this.next + this.capacity - this.size) % this.capacity;
    for (let i = 0; i < this.size; i++) out.push(this.items[(start + i) % this.capacity] as T);
    return out;
  }
}
