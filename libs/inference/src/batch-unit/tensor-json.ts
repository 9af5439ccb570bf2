import { Float32Scan, NotFast, skipWs } from './tensor-numbers';

/**
 * A JSON reader for request lines whose bulk is long arrays of numbers (JSON tensors). It gives
 * what JSON.parse gives, except that an array of more than NUMS_MIN numbers comes back as a
 * NumArray: its values as FP32 (each the JSON number rounded to float32, exactly what the
 * gateway's decoder stores for an FP32 tensor), written straight into the reader's arena, one
 * Float32Array per unit call, so a batch of lines can run on a view of it. Anything it does not
 * read with certainty (escapes aside: those strings go to JSON.parse) makes it throw NotFast:
 * the caller then uses JSON.parse, which also gives the exact error message for a broken line.
 */
export class NumArray {
  constructor(
    readonly arena: Float32Array,
    /** In elements of the arena. */
    readonly offset: number,
    readonly length: number,
  ) {}

  get values(): Float32Array {
    return this.arena.subarray(this.offset, this.offset + this.length);
  }

  toArray(): number[] {
    return Array.from(this.values);
  }
}

export { NotFast };

const NUMS_MIN = 64;

/**
 * Reads lines into one arena. An arena of `arenaFor(bytes)` elements holds every long array of
 * any lines totalling `bytes` (an array of k numbers takes at least 2k bytes).
 */
export class TensorJsonReader {
  /** Arena elements in use. */
  used = 0;

  constructor(readonly arena: Float32Array) {}

  static arenaFor(bytes: number): number {
    return Math.floor(bytes / 2) + 1;
  }

  /** Reads `s` (the UTF-8 bytes of one JSON value), or throws NotFast (and takes back what it wrote). */
  parse(s: Uint8Array): unknown {
    const mark = this.used;
    try {
      const r = new Reader(s, this.arena, mark);
      const v = r.value();
      r.ws();
      if (r.i !== s.length) throw new NotFast();
      this.used = r.at;
      return v;
    } catch (e) {
      this.used = mark;
      throw e;
    }
  }
}

/** One value with an arena of its own (tests, one-off reads). */
export function parseTensorJson(s: Uint8Array): unknown {
  return new TensorJsonReader(new Float32Array(TensorJsonReader.arenaFor(s.length))).parse(s);
}

class Reader {
  i = 0;
  private scan: Float32Scan | undefined;

  constructor(
    private readonly s: Uint8Array,
    private readonly arena: Float32Array,
    /** Next free arena element. */
    public at: number,
  ) {}

  ws(): void {
    this.i = skipWs(this.s, this.i);
  }

  value(): unknown {
    this.ws();
    const c = this.s[this.i];
    if (c === 34) return this.string();
    if (c === 123) return this.object();
    if (c === 91) return this.array();
    if (c === 45 || (c !== undefined && c >= 48 && c <= 57)) return this.number();
    for (const [word, v] of WORDS) {
      if (word.every((x, k) => this.s[this.i + k] === x)) {
        this.i += word.length;
        return v;
      }
    }
    throw new NotFast();
  }

  private object(): Record<string, unknown> {
    const s = this.s;
    this.i++;
    const o: Record<string, unknown> = {};
    this.ws();
    if (s[this.i] === 125) {
      this.i++;
      return o;
    }
    for (;;) {
      this.ws();
      if (s[this.i] !== 34) throw new NotFast();
      const k = this.string();
      if (k === '__proto__') throw new NotFast(); // JSON.parse makes it an own property; assignment would not
      this.ws();
      if (s[this.i++] !== 58) throw new NotFast();
      o[k] = this.value();
      this.ws();
      const d = s[this.i++];
      if (d === 44) continue;
      if (d === 125) return o;
      throw new NotFast();
    }
  }

  private array(): unknown[] | NumArray {
    const s = this.s;
    this.i++;
    this.ws();
    if (s[this.i] === 93) {
      this.i++;
      return [];
    }
    const c = s[this.i];
    if (c === 45 || (c !== undefined && c >= 48 && c <= 57)) {
      const nums = this.numbers();
      if (nums) return nums;
    }
    const a: unknown[] = [];
    for (;;) {
      a.push(this.value());
      this.ws();
      const d = s[this.i++];
      if (d === 44) continue;
      if (d === 93) return a;
      throw new NotFast();
    }
  }

  /**
   * A long array that holds only numbers, read into the arena as FP32; null (position and arena
   * unchanged) for a short one (read as doubles by the caller) or one where another kind of element comes.
   */
  private numbers(): NumArray | null {
    const scan = (this.scan ??= new Float32Scan(this.s));
    const count = scan.array(this.i, this.arena, this.at);
    if (count <= NUMS_MIN) return null;
    // Typed-array writes past the end are dropped silently: an arena too small must not pass.
    if (this.at + count > this.arena.length) throw new NotFast();
    const a = new NumArray(this.arena, this.at, count);
    this.at += count;
    this.i = scan.end;
    return a;
  }

  /** A JSON number (RFC 8259 grammar) as a double; short integers summed digit by digit, the rest by Number(), as exact as JSON.parse. */
  private number(): number {
    const s = this.s;
    const from = this.i;
    let i = from;
    let c = s[i];
    const neg = c === 45;
    if (neg) c = s[++i];
    let v = 0;
    if (c === 48) c = s[++i];
    else if (c !== undefined && c >= 49 && c <= 57) {
      do {
        v = v * 10 + (c - 48);
        c = s[++i];
      } while (c !== undefined && c >= 48 && c <= 57);
    } else throw new NotFast();
    let plain = i - from - (neg ? 1 : 0) <= 15;
    if (c === 46) {
      plain = false;
      c = s[++i];
      if (!(c !== undefined && c >= 48 && c <= 57)) throw new NotFast();
      do c = s[++i];
      while (c !== undefined && c >= 48 && c <= 57);
    }
    if (c === 101 || c === 69) {
      plain = false;
      c = s[++i];
      if (c === 43 || c === 45) c = s[++i];
      if (!(c !== undefined && c >= 48 && c <= 57)) throw new NotFast();
      do c = s[++i];
      while (c !== undefined && c >= 48 && c <= 57);
    }
    this.i = i;
    if (!plain) return Number(latin1.decode(s.subarray(from, i)));
    return neg ? -v : v;
  }

  private string(): string {
    const s = this.s;
    const from = ++this.i;
    let i = from;
    for (let c = s[i]; c !== 34; c = s[++i]) {
      if (c === undefined || c < 32) throw new NotFast(); // past the end, or a raw control character
      if (c === 92) {
        // Escapes: JSON.parse decodes (and checks) this one string.
        for (c = s[i]; c !== 34; c = s[++i]) {
          if (c === undefined) throw new NotFast();
          if (c === 92) i++;
        }
        this.i = i + 1;
        return JSON.parse(utf8.decode(s.subarray(from - 1, i + 1))) as string;
      }
    }
    this.i = i + 1;
    return utf8.decode(s.subarray(from, i));
  }
}

const WORDS: readonly (readonly [number[], unknown])[] = [
  [[...Buffer.from('true')], true],
  [[...Buffer.from('false')], false],
  [[...Buffer.from('null')], null],
];
const utf8 = new TextDecoder('utf-8');
const latin1 = new TextDecoder('latin1');
