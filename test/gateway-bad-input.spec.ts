import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../apps/gateway/src/bootstrap';
import { loadGatewayConfig } from '../apps/gateway/src/config/gateway.config';
import { createTestDatabase, type TestDatabase } from './support/test-env';
import { gatewayEnv } from './support/gateway-harness';

const x = (data: unknown, shape: number[] = [1, 1], datatype = 'FP32') => ({ inputs: [{ name: 'x', shape, datatype, data }] });

describe('bad input gets a clear 4xx {"error"} over a real socket', () => {
  let db: TestDatabase;
  let gw: RunningGateway;

  const send = async (path: string, body: string | Buffer, headers: Record<string, string> = { 'content-type': 'application/json' }) => {
    const res = await fetch(`${gw.url}${path}`, { method: 'POST', headers, body });
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: res.status, body: json as { error: string } };
  };
  const infer = (body: unknown, model = 'scorer') => send(`/v2/models/${model}/infer`, JSON.stringify(body));

  beforeAll(async () => {
    db = await createTestDatabase();
    gw = await startGateway(
      loadGatewayConfig({
        ...gatewayEnv(db.url),
        GATEWAY_BODY_LIMIT_MB: '1',
      }),
    );
  });

  afterAll(async () => {
    await gw?.app.close();
    await db?.drop();
  });

  it('unknown model or version is 404 on metadata, ready and infer', async () => {
    for (const path of ['/v2/models/nope', '/v2/models/nope/ready', '/v2/models/scorer/versions/7', '/v2/models/scorer/versions/7/ready']) {
      const res = await fetch(`${gw.url}${path}`);
      expect(res.status, path).toBe(404);
      expect(await res.json()).toEqual({ error: expect.stringMatching(/unknown (model 'nope'|version '7')/) });
    }
    expect(await infer(x([0.5]), 'nope')).toEqual({ status: 404, body: { error: "unknown model 'nope'" } });
    const v = await send('/v2/models/scorer/versions/2/infer', JSON.stringify(x([0.5])));
    expect(v).toEqual({ status: 404, body: { error: "unknown version '2' of model 'scorer'" } });
  });

  it('wrong shape, datatype, element count, names and data types are 400s naming the problem', async () => {
    const cases: [unknown, RegExp][] = [
      [x([0.5, 0.6], [1, 2]), /shape \[1,2\], the model expects \[-1,1\]/],
      [x([1], [1, 1], 'INT32'), /datatype INT32, the model expects FP32/],
      [x([1], [1, 1], 'FLOAT'), /not an OIP datatype/],
      [x([0.5, 0.6], [1, 1]), /has 2 elements, shape \[1,1\] needs 1/],
      [x(['a'], [1, 1]), /data\[0\] is not a number/],
      [x([null], [1, 1]), /data\[0\] is not a number/],
      [x([1], [1, -1]), /shape must hold non-negative integers/],
      [x([[1], [2]], [2]), /shape \[2\], the model expects/],
      [x([1], [1, 1], 'INT8'), /datatype INT8/],
      [x([300], [1, 1], 'UINT8'), /300 is not a valid UINT8/],
      [{ inputs: [{ name: 'y', shape: [1, 1], datatype: 'FP32', data: [1] }] }, /unexpected input 'y'/],
      [{ inputs: [] }, /inputs must be a non-empty array/],
      [{}, /inputs must be a non-empty array/],
      [[1, 2], /request body must be a JSON object/],
      [{ ...x([0.5]), id: 5 }, /id must be a string/],
      [{ ...x([0.5]), outputs: [{ name: 'nope' }] }, /unknown output 'nope'/],
      [{ ...x([0.5]), parameters: { timeout: -1 } }, /timeout must be a positive number/],
      [{ inputs: [{ name: 'x', shape: [1, 1], datatype: 'FP32' }] }, /neither data nor parameters.binary_data_size/],
    ];
    for (const [body, re] of cases) {
      const res = await infer(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error, JSON.stringify(body)).toMatch(re);
    }
  });

  it('malformed JSON is 400', async () => {
    const res = await send('/v2/models/scorer/infer', '{"inputs": [');
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: expect.any(String) });
  });

  it('binary extension: header length past the body, size mismatches and bad headers are 400', async () => {
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', shape: [1, 1], datatype: 'FP32', parameters: { binary_data_size: 4 } }] }));
    const body = Buffer.concat([header, Buffer.alloc(4)]);
    const bin = (b: Buffer, len: string) =>
      send('/v2/models/scorer/infer', b, { 'content-type': 'application/octet-stream', 'inference-header-content-length': len });

    const past = await bin(body, String(body.length + 10));
    expect(past.status).toBe(400);
    expect(past.body.error).toMatch(/past the end of the \d+-byte body/);

    const short = await bin(Buffer.concat([header, Buffer.alloc(2)]), String(header.length));
    expect(short.status).toBe(400);
    expect(short.body.error).toMatch(/binary_data_size runs past the end/);

    const extra = await bin(Buffer.concat([header, Buffer.alloc(8)]), String(header.length));
    expect(extra.status).toBe(400);
    expect(extra.body.error).toMatch(/binary section is 8 bytes but inputs claim 4/);

    const notNum = await bin(body, 'abc');
    expect(notNum.status).toBe(400);
    expect(notNum.body.error).toMatch(/Inference-Header-Content-Length must be a non-negative integer/);

    const badJson = await bin(Buffer.concat([Buffer.from('{"inputs":'), Buffer.alloc(4)]), '10');
    expect(badJson.status).toBe(400);
    expect(badJson.body.error).toMatch(/malformed JSON inference header/);

    const wrongSize = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', shape: [1, 1], datatype: 'FP32', parameters: { binary_data_size: 8 } }] }));
    const ws = await bin(Buffer.concat([wrongSize, Buffer.alloc(8)]), String(wrongSize.length));
    expect(ws.status).toBe(400);
    expect(ws.body.error).toMatch(/binary_data_size is 8 bytes, shape and FP32 need 4/);
  });

  it('a body over the limit is 413; an unknown content type is 415', async () => {
    const big = await send('/v2/models/ppocr_cls/infer', Buffer.alloc(2 * 1024 * 1024), {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': '10',
    });
    expect(big.status).toBe(413);
    expect(big.body).toEqual({ error: expect.stringMatching(/too large/i) });
    const bigJson = await send('/v2/models/scorer/infer', JSON.stringify(x(new Array(300_000).fill(0.5), [300_000, 1])));
    expect(bigJson.status).toBe(413);
    const weird = await send('/v2/models/scorer/infer', '<x/>', { 'content-type': 'application/xml' });
    expect(weird.status).toBe(415);
    expect(weird.body).toEqual({ error: expect.stringMatching(/unsupported content type/i) });
  });

  it('a batch beyond max_batch_size is 400', async () => {
    const res = await infer(x(new Array(1025).fill(0), [1025, 1]));
    expect(res.status).toBe(400);
    expect(res.body.error).toMatch(/batch size 1025 exceeds max_batch_size 1024/);
  });
});
