/**
 * A JSON reader for request lines whose bulk is long arrays of numbers (JSON tensors). It gives
 * what JSON.parse gives, except that an array of more than NUMS_MIN numbers comes back as a
 * NumArray (the values as doubles, no JS array), which a decoder can copy straight into a typed
 * array. Anything it does not read with certainty (escapes aside: those strings go to
 * JSON.parse) makes it throw NotFast: the caller then uses JSON.parse, which also gives the
 * exact error message for a broken line.
 */
export class NumArray {
  constructor(readonly values: Float64Array) {}

  toArray(): number[] {
    return Array.from(this.values);
  }
}

export class NotFast extends Error {}

const NUMS_MIN = 64;

/** Reads `s` (the UTF-8 bytes of one JSON value), or throws NotFast. */
export function parseTensorJson(s: Uint8Array): unknown {
  const r = new Reader(s);
  const v = r.value();
  r.ws();
  if (r.i !== s.length) throw new NotFast();
  return v;
}

class Reader {
  i = 0;
  private nums = new Float64Array(1024);

  constructor(private readonly s: Uint8Array) {}

  ws(): void {
    const s = this.s;
    let i = this.i;
    for (let c = s[i]; c === 32 || c === 10 || c === 13 || c === 9; c = s[++i]);
    this.i = i;
  }

  value(): unknown {
    this.ws();
    const c = this.s[this.i];
    if (c === 34) return this.string();
    if (c === 123) return this.object();
    if (c === 91) return this.array();
    if (c === 45 || (c >= 48 && c <= 57)) return this.number();
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
    if (c === 45 || (c >= 48 && c <= 57)) {
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

  /** An array that holds only numbers, read in one loop; null (position unchanged) if another kind of element comes. */
  private numbers(): unknown[] | NumArray | null {
    const s = this.s;
    const start = this.i;
    let i = start;
    let nums = this.nums;
    let n = 0;
    for (;;) {
      if (n === nums.length) {
        const grown = new Float64Array(n * 2);
        grown.set(nums);
        this.nums = nums = grown;
      }
      // Short plain integers inline (the bulk of a JSON tensor); anything else by number().
      const from = i;
      let c = s[i]!;
      const neg = c === 45;
      if (neg) c = s[++i]!;
      let v = 0;
      if (c >= 49 && c <= 57) {
        do {
          v = v * 10 + (c - 48);
          c = s[++i]!;
        } while (c >= 48 && c <= 57);
      } else if (c === 48) c = s[++i]!;
      else throw new NotFast();
      if (c === 46 || c === 101 || c === 69 || i - from > 15) {
        this.i = from;
        nums[n++] = this.number();
        i = this.i;
        c = s[i]!;
      } else nums[n++] = neg ? -v : v;
      if (c === 32 || c === 10 || c === 13 || c === 9) {
        this.i = i;
        this.ws();
        i = this.i;
        c = s[i]!;
      }
      i++;
      if (c === 93) break;
      if (c !== 44) throw new NotFast();
      c = s[i]!;
      if (c === 32 || c === 10 || c === 13 || c === 9) {
        this.i = i;
        this.ws();
        i = this.i;
        c = s[i]!;
      }
      if (!(c === 45 || (c >= 48 && c <= 57))) {
        this.i = start;
        return null;
      }
    }
    this.i = i;
    const values = nums.slice(0, n);
    return n > NUMS_MIN ? new NumArray(values) : Array.from(values);
  }

  /** A JSON number (RFC 8259 grammar); short integers summed digit by digit, the rest by Number(), as exact as JSON.parse. */
  private number(): number {
    const s = this.s;
    const from = this.i;
    let i = from;
    let c = s[i];
    const neg = c === 45;
    if (neg) c = s[++i];
    let v = 0;
    if (c === 48) c = s[++i];
    else if (c >= 49 && c <= 57) {
      do {
        v = v * 10 + (c - 48);
        c = s[++i];
      } while (c >= 48 && c <= 57);
    } else throw new NotFast();
    let plain = i - from - (neg ? 1 : 0) <= 15;
    if (c === 46) {
      plain = false;
      c = s[++i];
      if (!(c >= 48 && c <= 57)) throw new NotFast();
      do c = s[++i];
      while (c >= 48 && c <= 57);
    }
    if (c === 101 || c === 69) {
      plain = false;
      c = s[++i];
      if (c === 43 || c === 45) c = s[++i];
      if (!(c >= 48 && c <= 57)) throw new NotFast();
      do c = s[++i];
      while (c >= 48 && c <= 57);
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
