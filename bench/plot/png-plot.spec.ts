import { crc32, inflateSync } from 'node:zlib';
import { describe, it, expect } from 'vitest';
import { glyphColumns } from './bitmap-font';
import { encodePng, renderPlot } from './png-plot';

interface Decoded { width: number; height: number; types: string[]; pixel(x: number, y: number): [number, number, number] }

/** A minimal PNG reader, independent of the encoder, that checks every structural rule it relies on. */
function decode(png: Buffer): Decoded {
  expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const types: string[] = [];
  const idat: Buffer[] = [];
  let ihdr: Buffer | undefined;
  let off = 8;
  while (off < png.length) {
    const len = png.readUInt32BE(off);
    const type = png.toString('latin1', off + 4, off + 8);
    const data = png.subarray(off + 8, off + 8 + len);
    // Node's own CRC32 is the reference, so a bug in ours cannot hide behind itself.
    expect(png.readUInt32BE(off + 8 + len), `CRC of ${type}`).toBe(crc32(png.subarray(off + 4, off + 8 + len)));
    types.push(type);
    if (type === 'IHDR') ihdr = data;
    if (type === 'IDAT') idat.push(data);
    off += 12 + len;
  }
  expect(off).toBe(png.length);
  expect(types[0]).toBe('IHDR');
  expect(types[types.length - 1]).toBe('IEND');
  if (!ihdr) throw new Error('no IHDR');
  const width = ihdr.readUInt32BE(0), height = ihdr.readUInt32BE(4);
  expect([...ihdr.subarray(8)]).toEqual([8, 2, 0, 0, 0]);
  const raw = inflateSync(Buffer.concat(idat));
  expect(raw.length).toBe(height * (1 + 3 * width));
  for (let y = 0; y < height; y++) expect(raw[y * (1 + 3 * width)]).toBe(0);
  const pixel = (x: number, y: number): [number, number, number] => {
    const i = y * (1 + 3 * width) + 1 + x * 3;
    return [raw[i], raw[i + 1], raw[i + 2]];
  };
  return { width, height, types, pixel };
}

const isRed = ([r, g, b]: [number, number, number]): boolean => r > 200 && g < 80 && b < 80;
const isBlue = ([r, g, b]: [number, number, number]): boolean => b > 200 && r < 80 && g < 80;

describe('encodePng', () => {
  it('writes signature, IHDR, IDAT, IEND with valid CRCs and the exact pixels', () => {
    const rgb = new Uint8Array([255, 0, 0, 0, 255, 0, 0, 0, 255, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const png = encodePng(3, 2, rgb);
    const d = decode(png);
    expect(d.types).toEqual(['IHDR', 'IDAT', 'IEND']);
    expect([d.width, d.height]).toEqual([3, 2]);
    expect(d.pixel(0, 0)).toEqual([255, 0, 0]);
    expect(d.pixel(2, 0)).toEqual([0, 0, 255]);
    expect(d.pixel(2, 1)).toEqual([7, 8, 9]);
    // IEND's CRC is a fixed, well-known constant.
    expect(png.readUInt32BE(png.length - 4)).toBe(0xae426082);
  });

  it('rejects a buffer of the wrong size', () => {
    expect(() => encodePng(2, 2, new Uint8Array(5))).toThrow(/RGB bytes/);
  });
});

describe('renderPlot', () => {
  it('draws a red series where it must pass and leaves the far corner white', () => {
    const png = renderPlot({
      width: 600, height: 400, title: 'Trace', xLabel: 'time (s)',
      panels: [{ title: 'load', yLabel: 'rps', yMin: 0, yMax: 10, series: [{ name: 'red', color: [220, 20, 20], points: [{ x: 0, y: 5 }, { x: 100, y: 5 }] }] }],
    });
    const d = decode(png);
    expect([d.width, d.height]).toEqual([600, 400]);
    // A horizontal line at mid-scale crosses the centre column near the middle of the plot area.
    const cx = 300;
    const redRows = [...Array(d.height).keys()].filter((y) => isRed(d.pixel(cx, y)));
    expect(redRows.length).toBe(2); // 2px thick, and nothing else red in that column
    expect(Math.abs(redRows[0] - d.height / 2)).toBeLessThan(d.height * 0.1);
    expect(d.pixel(d.width - 1, d.height - 1)).toEqual([255, 255, 255]);
    expect(d.pixel(d.width - 2, d.height - 2)).toEqual([255, 255, 255]);
  });

  it('renders two panels with a right-axis series at the requested size', () => {
    const trace = [...Array(50).keys()].map((i) => ({ x: i * 0.2, y: Math.sin(i / 5) }));
    const png = renderPlot({
      width: 800, height: 520, title: 'Autoscale × load → latency', xLabel: 'elapsed [s]',
      panels: [
        { title: 'Load', yLabel: 'req/s', yRightLabel: 'replicas', series: [
          { name: 'offered', color: [220, 20, 20], points: trace },
          { name: 'replicas', color: [20, 20, 230], points: trace.map((p) => ({ x: p.x, y: 1000 + Math.round(p.y * 3) })), axis: 'right', step: true },
        ] },
        { title: 'Latency p99', yLabel: 'ms', series: [{ name: 'p99', color: [20, 150, 20], points: trace.map((p) => ({ x: p.x, y: 50 + 40 * p.y })) }] },
      ],
    });
    const d = decode(png);
    expect([d.width, d.height]).toEqual([800, 520]);
    // The right-axis series is drawn on its own scale (1000s), so it lands inside the top panel.
    let blue = 0;
    for (let y = 40; y < d.height / 2; y++) for (let x = 100; x < 700; x += 3) if (isBlue(d.pixel(x, y))) blue++;
    expect(blue).toBeGreaterThan(50);
  });

  it('survives empty series, NaN/Infinity points, lone points, huge values and no panels', () => {
    const weird = [{ x: NaN, y: 1 }, { x: 1, y: NaN }, { x: 2, y: Infinity }, { x: 3, y: 4 }, { x: 4, y: 1e300 }, { x: 5, y: -1e300 }];
    const cases = [
      renderPlot({ title: 'empty', xLabel: 'x', panels: [] }),
      renderPlot({ title: 'e', xLabel: 'x', panels: [{ title: 'p', yLabel: 'y', series: [{ name: 'none', color: [0, 0, 0], points: [] }] }] }),
      renderPlot({ title: 'w', xLabel: 'x', width: 300, height: 200, panels: [{ title: 'p', yLabel: 'y', yMin: 0, yMax: 10, series: [
        { name: 'weird', color: [200, 0, 0], points: weird, step: true },
        { name: 'one', color: [0, 0, 200], points: [{ x: 1, y: 1 }], axis: 'right' },
        { name: 'nan', color: [0, 200, 0], points: [{ x: NaN, y: NaN }] },
      ] }] }),
      renderPlot({ title: 'bad bounds', xLabel: 'x', panels: [{ title: 'p', yLabel: 'y', yMin: 5, yMax: 1, series: [] }] }),
    ];
    for (const png of cases) {
      const d = decode(png);
      expect(d.width).toBeGreaterThan(0);
    }
    expect(decode(cases[2]).width).toBe(300);
  });
});

describe('bitmap font', () => {
  it('has a visible glyph for every printable ASCII character but space', () => {
    for (let c = 33; c <= 126; c++) expect(glyphColumns(String.fromCharCode(c)).some((col) => col !== 0), String.fromCharCode(c)).toBe(true);
    expect(glyphColumns(' ').every((col) => col === 0)).toBe(true);
    expect(glyphColumns('×')).not.toEqual(glyphColumns('?'));
  });
});
