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

export class NotFast extends Error {}

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

/** Exact powers of ten as doubles (10^22 is the largest). */
const POW10 = Float64Array.from({ length: 23 }, (_, k) => Number(`1e${k}`));
const F32 = new Float32Array(1);
const F32_BITS = new Uint32Array(F32.buffer);
/** Relative error allowed for a rounded decimal (see f32At); far above what its arithmetic can make. */
const MARGIN = 2 ** -44;
/** Half the spacing of float32s whose biased exponent is the index. */
const HALF_ULP = Float64Array.from({ length: 256 }, (_, e) => 2 ** (e - 151));

class Reader {
  i = 0;
  private text: string | undefined;

  constructor(
    private readonly s: Uint8Array,
    private readonly arena: Float32Array,
    /** Next free arena element. */
    public at: number,
  ) {}

  ws(): void {
    this.i = this.skipWs(this.i);
  }

  private skipWs(i: number): number {
    const s = this.s;
    for (let c = s[i]; c === 32 || c === 10 || c === 13 || c === 9; c = s[++i]);
    return i;
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
   * A long array that holds only numbers, read in one loop into the arena as FP32; null
   * (position and arena unchanged) for a short one (read as doubles by the caller) or one where
   * another kind of element comes.
   */
  private numbers(): NumArray | null {
    const s = this.s;
    const out = this.arena;
    const start = this.i;
    const base = this.at;
    let i = start;
    let n = base;
    for (;;) {
      let c = s[i]!;
      // One digit and a comma (a {-1, 0, 1} or 0…9 tensor): no loops, no further tests.
      if (c === 45) {
        const d = s[i + 1]! - 48;
        if (d >= 0 && d <= 9 && s[i + 2] === 44) {
          out[n++] = -d;
          i += 3;
          continue;
        }
      } else {
        const d = c - 48;
        if (d >= 0 && d <= 9 && s[i + 1] === 44) {
          out[n++] = d;
          i += 2;
          continue;
        }
      }
      if (!(c === 45 || (c >= 48 && c <= 57))) {
        // After a comma (array() saw a number first): whitespace, then a number or another kind of element.
        i = this.skipWs(i);
        c = s[i]!;
        if (!(c === 45 || (c >= 48 && c <= 57))) {
          this.i = start; // the caller reads the array
          return null;
        }
        continue;
      }
      const from = i;
      const neg = c === 45;
      if (neg) c = s[++i]!;
      let v = 0;
      // Short plain integers inline; anything else by f32At().
      if (c >= 49 && c <= 57) {
        v = c - 48;
        c = s[++i]!;
        while (c >= 48 && c <= 57) {
          v = v * 10 + (c - 48);
          c = s[++i]!;
        }
      } else if (c === 48) c = s[++i]!;
      else throw new NotFast();
      if (c === 46 || c === 101 || c === 69 || v >= 1e15) {
        out[n++] = this.f32At(from);
        i = this.i;
        c = s[i]!;
      } else out[n++] = neg ? -v : v;
      if (c !== 44 && c !== 93) {
        i = this.skipWs(i);
        c = s[i]!;
      }
      i++;
      if (c === 93) break;
      if (c !== 44) throw new NotFast();
    }
    const count = n - base;
    if (count <= NUMS_MIN) {
      this.i = start;
      return null;
    }
    // Typed-array writes past the end are dropped silently: an arena too small must not pass.
    if (n > out.length) throw new NotFast();
    this.i = i;
    this.at = n;
    return new NumArray(out, base, count);
  }

  /**
   * The JSON number at `from` rounded to FP32, exactly Math.fround(JSON.parse(text)). Up to 15
   * significant digits and |exponent| ≤ 22 it is one correctly rounded double operation
   * (Clinger's fast path), so exactly JSON.parse's double; with more digits the double computed
   * is within 2^-46 (relative) of the text, and taken only when it is farther than MARGIN from
   * the midpoint between two float32s, where the true value and JSON.parse's double round to the
   * same float32. Anything else goes through Number().
   */
  private f32At(from: number): number {
    const s = this.s;
    let i = from;
    let c = s[i];
    const neg = c === 45;
    if (neg) c = s[++i];
    const intStart = i;
    if (c === 48) c = s[++i];
    else if (c !== undefined && c >= 49 && c <= 57) {
      do c = s[++i];
      while (c !== undefined && c >= 48 && c <= 57);
    } else throw new NotFast();
    const intEnd = i;
    let fracStart = i;
    let fracEnd = i;
    if (c === 46) {
      c = s[++i];
      if (!(c !== undefined && c >= 48 && c <= 57)) throw new NotFast();
      fracStart = i;
      do c = s[++i];
      while (c !== undefined && c >= 48 && c <= 57);
      fracEnd = i;
    }
    let ex = 0;
    let longExp = false;
    if (c === 101 || c === 69) {
      c = s[++i];
      const eneg = c === 45;
      if (c === 43 || c === 45) c = s[++i];
      if (!(c !== undefined && c >= 48 && c <= 57)) throw new NotFast();
      const e0 = i;
      do {
        ex = ex * 10 + (c - 48);
        c = s[++i];
      } while (c !== undefined && c >= 48 && c <= 57);
      longExp = i - e0 > 6;
      if (eneg) ex = -ex;
    }
    this.i = i;
    // The significant digits: from the first non-zero one (integer part, then fraction) to the end.
    let p = intStart;
    while (p < intEnd && s[p] === 48) p++;
    if (p === intEnd) {
      p = fracStart;
      while (p < fracEnd && s[p] === 48) p++;
      if (p === fracEnd) return neg ? -0 : 0;
    }
    const sig = p < intEnd ? intEnd - p + (fracEnd - fracStart) : fracEnd - p;
    const e10 = ex - (fracEnd - fracStart);
    if (longExp || sig > 40 || e10 > 22 || e10 < -22) return this.slowF32(from, i);
    // Eight digits at a time in integers (a double multiply-add per digit would be a long dependency chain).
    let v = 0;
    let w = 0;
    let k = 0;
    for (let q = p; q < intEnd; q++) {
      w = w * 10 + (s[q]! - 48);
      if (++k === 8) {
        v = v * 1e8 + w;
        w = k = 0;
      }
    }
    for (let q = p > fracStart ? p : fracStart; q < fracEnd; q++) {
      w = w * 10 + (s[q]! - 48);
      if (++k === 8) {
        v = v * 1e8 + w;
        w = k = 0;
      }
    }
    v = v * POW10[k]! + w;
    const a = e10 >= 0 ? v * POW10[e10]! : v / POW10[-e10]!;
    if (sig <= 15) return Math.fround(neg ? -a : a);
    F32[0] = a;
    const bits = F32_BITS[0]!;
    const exp = (bits >>> 23) & 0xff;
    // Zero or subnormal, the top binade, or a power of two (its neighbours are not equally far): by Number().
    if (exp === 0 || exp >= 254 || (bits & 0x7fffff) === 0) return this.slowF32(from, i);
    const f = F32[0]!;
    if (Math.abs(a - f) < HALF_ULP[exp]! - a * MARGIN) return neg ? -f : f;
    return this.slowF32(from, i);
  }

  private slowF32(from: number, to: number): number {
    this.text ??= Buffer.from(this.s.buffer, this.s.byteOffset, this.s.byteLength).toString('latin1');
    return Math.fround(Number(this.text.slice(from, to)));
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
