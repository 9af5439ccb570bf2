/**
 * The number scanning of tensor-json: a JSON array of numbers straight into a Float32Array, each
 * value exactly what the gateway's JSON decoder stores for an FP32 tensor (the double JSON.parse
 * reads, rounded to float32), or NotFast for anything it does not read with certainty.
 */
export class NotFast extends Error {}

/** Exact powers of ten as doubles (10^22 is the largest). */
const POW10 = Float64Array.from({ length: 23 }, (_, k) => Number(`1e${k}`));
const F32 = new Float32Array(1);
const F32_BITS = new Uint32Array(F32.buffer);
/** Relative error allowed for a rounded decimal (see f32At); far above what its arithmetic can make. */
const MARGIN = 2 ** -44;
/** Half the spacing of float32s whose biased exponent is the index. */
const HALF_ULP = Float64Array.from({ length: 256 }, (_, e) => 2 ** (e - 151));

export function skipWs(s: Uint8Array, i: number): number {
  for (let c = s[i]; c === 32 || c === 10 || c === 13 || c === 9; c = s[++i]);
  return i;
}

/** Scans the numbers of one JSON text. */
export class Float32Scan {
  /** Where the last scan ended. */
  end = 0;
  private text: string | undefined;

  constructor(private readonly s: Uint8Array) {}

  /**
   * The array whose first element (a number) is at `start`, read in one loop into `out` from `at`:
   * how many numbers, `end` just past its `]`; -1 when another kind of element comes (the caller
   * reads the array). Writes past the end of `out` are dropped: the caller checks the count.
   */
  array(start: number, out: Float32Array, at: number): number {
    const s = this.s;
    let n = at;
    let i = start;
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
        i = skipWs(s, i);
        c = s[i]!;
        if (!(c === 45 || (c >= 48 && c <= 57))) return -1; // the caller reads the array
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
        i = this.end;
        c = s[i]!;
      } else out[n++] = neg ? -v : v;
      if (c !== 44 && c !== 93) {
        i = skipWs(s, i);
        c = s[i]!;
      }
      i++;
      if (c === 93) break;
      if (c !== 44) throw new NotFast();
    }
    this.end = i;
    return n - at;
  }

  /**
   * The JSON number at `from` rounded to FP32, exactly Math.fround(JSON.parse(text)). Up to 15
   * significant digits and |exponent| ≤ 22 it is one correctly rounded double operation
   * (Clinger's fast path), so exactly JSON.parse's double; with more digits the double computed
   * is within 2^-46 (relative) of the text, and taken only when it is farther than MARGIN from
   * the midpoint between two float32s, where the true value and JSON.parse's double round to the
   * same float32. Anything else goes through Number().
   */
  f32At(from: number): number {
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
    this.end = i;
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
}
