/**
 * A classic 5x7 bitmap font for printable ASCII (32–126), so charts need no font files.
 * Each glyph is 5 column bytes (10 hex chars); bit 0 is the top row, bit 6 the bottom.
 */
const GLYPHS_HEX = [
  '0000000000', '00005f0000', '0007000700', '147f147f14', '242a7f2a12', '2313086462', '3649552250', '0005030000', // ' '..'''
  '001c224100', '0041221c00', '082a1c2a08', '08083e0808', '0050300000', '0808080808', '0060600000', '2010080402', // '('..'/'
  '3e5149453e', '00427f4000', '4261514946', '2141454b31', '1814127f10', '2745454539', '3c4a494930', '0171090503', // '0'..'7'
  '3649494936', '064949291e', '0036360000', '0056360000', '0814224100', '1414141414', '0041221408', '0201510906', // '8'..'?'
  '3249794132', '7e1111117e', '7f49494936', '3e41414122', '7f4141221c', '7f49494941', '7f09090101', '3e41415132', // '@'..'G'
  '7f0808087f', '00417f4100', '2040413f01', '7f08142241', '7f40404040', '7f0204027f', '7f0408107f', '3e4141413e', // 'H'..'O'
  '7f09090906', '3e4151215e', '7f09192946', '4649494931', '01017f0101', '3f4040403f', '1f2040201f', '7f2018207f', // 'P'..'W'
  '6314081463', '0304780403', '6151494543', '007f414100', '0204081020', '0041417f00', '0402010204', '4040404040', // 'X'..'_'
  '0001020400', '2054545478', '7f48444438', '3844444420', '384444487f', '3854545418', '087e090102', '0c5252523e', // '`'..'g'
  '7f08040478', '00447d4000', '2040443d00', '007f102844', '00417f4000', '7c04180478', '7c08040478', '3844444438', // 'h'..'o'
  '7c14141408', '081414187c', '7c08040408', '4854545420', '043f444020', '3c4040207c', '1c2040201c', '3c4030403c', // 'p'..'w'
  '4428102844', '0c5050503c', '4464544c44', '0008364100', '00007f0000', '0041360800', '0804081008', // 'x'..'~'
];

/** Non-ASCII characters that bench titles use, drawn with their own glyph rather than '?'. */
const EXTRA_HEX: Record<string, string> = {
  '×': '2214081422',
  '→': '08082a1c08',
  '←': '081c2a0808',
  'µ': '7c20201c20',
  '≤': '4454544a41',
  '≥': '414a545444',
  '°': '0006090600',
};

const decode = (hex: string): number[] => [0, 2, 4, 6, 8].map((i) => parseInt(hex.slice(i, i + 2), 16));
const ASCII: number[][] = GLYPHS_HEX.map(decode);
const EXTRA: Map<string, number[]> = new Map(Object.entries(EXTRA_HEX).map(([ch, hex]) => [ch, decode(hex)]));
const UNKNOWN = ASCII['?'.charCodeAt(0) - 32];

export const GLYPH_W = 5;
export const GLYPH_H = 7;
/** Advance per character: glyph plus one column of spacing. */
export const ADVANCE = GLYPH_W + 1;

export function glyphColumns(ch: string): number[] {
  const code = ch.codePointAt(0) ?? 63;
  if (code >= 32 && code <= 126) return ASCII[code - 32];
  return EXTRA.get(ch) ?? UNKNOWN;
}

/** Pixel width of a string at a given integer scale (no trailing spacing column). */
export function textWidth(text: string, scale = 1): number {
  const n = Array.from(text).length;
  return n === 0 ? 0 : (n * ADVANCE - 1) * scale;
}

export type PutPixel = (x: number, y: number) => void;

/**
 * Draws text with its top-left corner at (x, y). `vertical` rotates it 90° counter-clockwise
 * (reading bottom-to-top, as y-axis labels do); then (x, y) is the top-left of the rotated box.
 */
export function drawText(put: PutPixel, x: number, y: number, text: string, scale = 1, vertical = false): void {
  const chars = Array.from(text);
  const len = textWidth(text, scale);
  chars.forEach((ch, i) => {
    const cols = glyphColumns(ch);
    for (let cx = 0; cx < GLYPH_W; cx++) {
      for (let cy = 0; cy < GLYPH_H; cy++) {
        if (((cols[cx] >> cy) & 1) === 0) continue;
        const gx = i * ADVANCE * scale + cx * scale; // along the text direction
        const gy = cy * scale; // across it
        for (let sx = 0; sx < scale; sx++) {
          for (let sy = 0; sy < scale; sy++) {
            if (vertical) put(x + gy + sy, y + len - 1 - (gx + sx));
            else put(x + gx + sx, y + gy + sy);
          }
        }
      }
    }
  });
}
