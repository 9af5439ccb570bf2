import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../apps/gateway/src/bootstrap';
import { loadGatewayConfig } from '../apps/gateway/src/config/gateway.config';
import { launchChromium } from './support/browser';
import { gatewayEnv } from './support/gateway-harness';
import { characterErrorRate, renderSheet, type Sheet } from './support/ocr-render';
import { createTestDatabase, type TestDatabase } from './support/test-env';

/**
 * The shipped `ocr` node model over real sockets: a gateway on the shipped repository, PNGs that
 * Chromium renders here sent as a BYTES tensor with the binary tensor data extension, text
 * read back; the sub-models (ppocr_det/cls/rec) are served by the same gateway and reached
 * through ctx.infer, i.e. their own batchers.
 */
const SHEETS: Sheet[] = [
  { name: 'e2e-receipt', lines: [{ text: 'Receipt 5520 from Tandem Books' }, { text: 'Paid 42 dollars on March 14' }] },
  {
    name: 'e2e-upside-down',
    lines: [{ text: 'Platform 9 departs at 1645' }, { text: 'Seat 27 in carriage 3', upsideDown: true }, { text: 'Keep your ticket 80317' }],
  },
];
const MAX_CER = 0.05;

interface OcrAnswer {
  status: number;
  lines: string[];
  error?: string;
}

/** POST one image as a BYTES element (4-byte little-endian length, then the bytes) after the JSON header. */
async function readImage(baseUrl: string, image: Uint8Array): Promise<OcrAnswer> {
  const element = Buffer.alloc(4 + image.length);
  element.writeUInt32LE(image.length, 0);
  element.set(image, 4);
  const header = Buffer.from(
    JSON.stringify({
      inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], parameters: { binary_data_size: element.length } }],
      outputs: [{ name: 'text' }],
    }),
  );
  const res = await fetch(`${baseUrl}/v2/models/ocr/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
    body: Buffer.concat([header, element]),
    signal: AbortSignal.timeout(60_000),
  });
  const body = (await res.json()) as { outputs?: { name: string; datatype: string; shape: number[]; data: string[] }[]; error?: string };
  const text = body.outputs?.find((o) => o.name === 'text');
  if (text) expect(text).toMatchObject({ datatype: 'BYTES', shape: [text.data.length] });
  return { status: res.status, lines: text?.data ?? [], error: body.error };
}

describe('ocr node model served by a real gateway (OIP REST, binary BYTES)', () => {
  let db: TestDatabase;
  let gw: RunningGateway;
  let browser: Browser;
  const images = new Map<string, Buffer>();

  beforeAll(async () => {
    db = await createTestDatabase();
    browser = await launchChromium();
    for (const s of SHEETS) images.set(s.name, await renderSheet(browser, s));
    gw = await startGateway(loadGatewayConfig(gatewayEnv(db.url)));
  });

  afterAll(async () => {
    await gw?.app.close();
    await browser?.close();
    await db?.drop();
  });

  it('declares the node model: one BYTES image in, BYTES text lines out', async () => {
    const meta = await (await fetch(`${gw.url}/v2/models/ocr`)).json();
    expect(meta).toMatchObject({
      name: 'ocr',
      versions: ['1'],
      inputs: [{ name: 'image', datatype: 'BYTES', shape: [1] }],
      outputs: [{ name: 'text', datatype: 'BYTES', shape: [-1] }],
    });
    expect((await fetch(`${gw.url}/v2/models/ocr/ready`)).status).toBe(200);
    // Every gateway on the shipped repository loads ocr and its sub-models: readiness stays whole.
    const ready = await fetch(`${gw.url}/v2/health/ready`);
    expect(ready.status).toBe(200);
    expect(((await ready.json()) as { checks: Record<string, string> }).checks.models).toBe('ok');
  });

  it.each(SHEETS)('reads the rendered $name PNG, CER at most 5 percent', async (sheet) => {
    const got = await readImage(gw.url, images.get(sheet.name)!);
    expect(got.status, got.error).toBe(200);
    const expected = sheet.lines.map((l) => l.text);
    const cer = characterErrorRate(expected.join('\n'), got.lines.join('\n'));
    expect(cer, `CER ${cer.toFixed(3)}: read ${JSON.stringify(got.lines)}, rendered ${JSON.stringify(expected)}`).toBeLessThanOrEqual(MAX_CER);
    expect(got.lines).toHaveLength(expected.length);
  });

  it('reads several images at once, each right, through the sub-models own batchers', async () => {
    const order = [...SHEETS, ...SHEETS, ...SHEETS];
    const answers = await Promise.all(order.map((s) => readImage(gw.url, images.get(s.name)!)));
    answers.forEach((a, i) => {
      expect(a.status, a.error).toBe(200);
      expect(characterErrorRate(order[i]!.lines.map((l) => l.text).join('\n'), a.lines.join('\n'))).toBeLessThanOrEqual(MAX_CER);
    });
    // ctx.infer calls are not client requests, but each sub-model's batcher ran batches for them.
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    for (const m of ['ppocr_det', 'ppocr_cls', 'ppocr_rec']) {
      expect(metrics, `${m} batches`).toMatch(new RegExp(`tandem_inference_batch_size_count\\{model="${m}"\\} [1-9]`));
    }
  });

  it('answers bytes that are not an image with 400 and a reason', async () => {
    const got = await readImage(gw.url, Buffer.from('definitely not a png'));
    expect(got.status).toBe(400);
    expect(got.error).toMatch(/not a PNG or JPEG/);
  });
});
