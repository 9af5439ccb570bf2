import sharp from 'sharp';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isInputError, textOf, type OutputTensor } from '@tandem/sdk';
import ocr from '../models/ocr/1/model';
import { readText, type OcrState } from '../models/ocr/1/pipeline';
import { launchChromium } from './support/browser';
import { localModelContext, type LocalModelContext } from '../bench/support/local-model-context';
import { characterErrorRate, renderSheet, type Sheet } from './support/ocr-render';

/**
 * The `ocr` node model driven through its default export (initialize/execute) over a real
 * ModelContext whose `infer` runs the repository's ppocr_det/ppocr_cls/ppocr_rec ONNX files in
 * onnxruntime, on images Chromium renders here. The gateway path is test/ocr-gateway.e2e.spec.ts.
 */
const SHEETS: Sheet[] = [
  {
    name: 'invoice',
    lines: [{ text: 'Invoice 4471 for order 90328' }, { text: 'Shipped to 12 Harbor Street' }, { text: 'Total due 1575 dollars by June 30' }],
  },
  {
    name: 'upside-down',
    lines: [
      { text: 'Tandem reads printed text' },
      { text: 'The quick brown fox 2048', upsideDown: true },
      { text: 'Serial number 7315 9022' },
      { text: 'Seven hundred parcels left the depot at 0630 on Friday morning', upsideDown: true },
    ],
  },
  { name: 'digits', fontSize: 22, lines: [{ text: '0123456789' }, { text: '31415 92653 58979 32384' }, { text: 'Room 208 opens at 0945' }] },
  // Long lines at a small size: 40:1 crops (wide rec buckets; the direction classifier sees windows).
  {
    name: 'dense',
    fontSize: 16,
    lines: [
      { text: 'Tandem serves models over the Open Inference Protocol version 2 with REST and gRPC' },
      { text: 'One pool of devices is shared by online inference and batch queues in Postgres' },
      { text: 'The dynamic batcher groups same shape requests up to max batch size 64' },
      { text: 'A request whose deadline passes while queued is answered 504 and never runs' },
      { text: 'Scale out is more processes of the same apps on the same Postgres and Redis' },
    ],
  },
];
const MAX_CER = 0.05;

describe('ocr pipeline (node model over the repository ppocr models)', () => {
  let browser: Browser;
  let ctx: LocalModelContext;
  let state: OcrState;
  const images = new Map<string, Buffer>();

  const run = async (...elements: Uint8Array[]): Promise<OutputTensor> => {
    const info = { requests: [1], signal: new AbortController().signal, warmup: false };
    const out = await ocr.execute({ image: { name: 'image', datatype: 'BYTES', shape: [elements.length], data: elements } }, state, ctx, info);
    return out.text!;
  };
  const inputError = async (bytes: Uint8Array[], message: RegExp): Promise<void> => {
    const err: unknown = await run(...bytes).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isInputError(err), `expected an InputError, got ${String(err)}`).toBe(true);
    expect((err as Error).message).toMatch(message);
  };

  beforeAll(async () => {
    browser = await launchChromium();
    for (const s of SHEETS) images.set(s.name, await renderSheet(browser, s));
    ctx = localModelContext({ repo: 'models', model: 'ocr', threads: 2 });
    state = await ocr.initialize!(ctx);
  });

  afterAll(async () => {
    await browser?.close();
    await ctx?.close();
  });

  it.each(SHEETS)('reads the rendered $name sheet top to bottom, CER at most 5 percent', async (sheet) => {
    const text = await run(images.get(sheet.name)!);
    expect(text.datatype).toBe('BYTES');
    const lines = textOf(text.data);
    expect(text.shape).toEqual([lines.length]);
    const expected = sheet.lines.map((l) => l.text);
    const cer = characterErrorRate(expected.join('\n'), lines.join('\n'));
    expect(cer, `CER ${cer.toFixed(3)}: read ${JSON.stringify(lines)}, rendered ${JSON.stringify(expected)}`).toBeLessThanOrEqual(MAX_CER);
    expect(lines).toHaveLength(expected.length);
  });

  it('turns the upside-down lines (and only those) before recognising them', async () => {
    const lines = await readText(state, ctx.infer.bind(ctx), images.get('upside-down')!, new AbortController().signal);
    expect(lines.map((l) => l.rotated)).toEqual([false, true, false, true]);
    expect(characterErrorRate('The quick brown fox 2048', lines[1]!.text)).toBeLessThanOrEqual(MAX_CER);
    // Boxes are in source pixels, clockwise from top-left, top to bottom.
    const tops = lines.map((l) => l.box[0][1]);
    expect([...tops].sort((a, b) => a - b)).toEqual(tops);
  });

  it('calls detection, direction and recognition as separate repository models, batching lines', () => {
    expect(ctx.calls.get('ppocr_det')?.calls).toBeGreaterThanOrEqual(SHEETS.length);
    expect(ctx.calls.get('ppocr_cls')?.largestBatch).toBeGreaterThanOrEqual(3);
    expect(ctx.calls.get('ppocr_rec')?.calls).toBeGreaterThanOrEqual(SHEETS.length);
  });

  it('answers a blank page with no lines', async () => {
    const blank = await sharp({ create: { width: 640, height: 240, channels: 3, background: '#ffffff' } })
      .png()
      .toBuffer();
    const text = await run(blank);
    expect(text.shape).toEqual([0]);
    expect(text.data).toEqual([]);
  });

  it('reads a JPEG, a 16-bit PNG and a transparent PNG too', async () => {
    const png = images.get('invoice')!;
    const jpeg = await sharp(png).jpeg({ quality: 85 }).toBuffer();
    const png16 = await sharp(png).toColourspace('rgb16').png().toBuffer();
    expect((await sharp(png16).metadata()).depth).toBe('ushort');
    // Black text on a transparent background (alpha = ink): flattened onto white, not onto black.
    const grey = await sharp(png).greyscale().toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
    const rgba = Buffer.alloc(grey.info.width * grey.info.height * 4);
    for (let i = 0; i < grey.info.width * grey.info.height; i++) rgba[i * 4 + 3] = 255 - grey.data[i]!;
    const transparent = await sharp(rgba, { raw: { width: grey.info.width, height: grey.info.height, channels: 4 } })
      .png()
      .toBuffer();
    const expected = SHEETS[0]!.lines.map((l) => l.text).join('\n');
    for (const img of [jpeg, png16, transparent]) {
      const lines = textOf((await run(img)).data);
      expect(characterErrorRate(expected, lines.join('\n')), JSON.stringify(lines)).toBeLessThanOrEqual(MAX_CER);
    }
  });

  it('answers bad input with the SDK InputError (a 400 when served)', async () => {
    await inputError([Buffer.from('this is not an image')], /not a PNG or JPEG/);
    await inputError([new Uint8Array(0)], /empty/);
    const webp = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#fff' } })
      .webp()
      .toBuffer();
    await inputError([webp], /webp; send a PNG or JPEG/);
    const huge = await sharp({ create: { width: 4097, height: 4097, channels: 3, background: '#fff' } })
      .png({ compressionLevel: 1 })
      .toBuffer();
    await inputError([huge], /4097×4097 pixels; at most 16777216/);
    const png = images.get('invoice')!;
    await inputError([png.subarray(0, Math.floor(png.length / 2))], /cannot decode|not a PNG or JPEG/);
    await inputError([png, png], /one image per request/);
  });
});
