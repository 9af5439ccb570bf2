import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bytesOf, textOf } from '@tandem/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildIdentityModel } from '../../../scripts/generate-models';
import { parseModelConfig } from './model-config';
import { ModelRunner, type InferenceRunner } from './model-runner';
import { fromWire, ortToWireData, packBytes, toWire, unpackBytes, wireToOrtData, type PackedBytes } from './runner-wire';
import type { InferTensor } from './tensor';
import { WorkerModelRunner } from './worker-model-runner';

const TEXT = ['héllo', '', '日本語', 'a b', '🙂'];

describe('runner wire: BYTES between a parent and its worker or unit process', () => {
  it('packs elements into one fresh buffer and unpacks them as views of it', () => {
    const body = Buffer.from([9, 0x00, 0xff, 0x89, 0x50, 9]);
    const els = [body.subarray(1, 3), new Uint8Array(0), body.subarray(3, 5)];
    const [w] = toWire([{ name: 'b', datatype: 'BYTES', shape: [3], data: els }]);
    const p = w!.data as PackedBytes;
    expect(p.bytes.buffer).not.toBe(body.buffer);
    expect(p.bytes.byteLength).toBe(4);
    expect(Array.from(p.ends)).toEqual([2, 2, 4]);
    const [back] = fromWire([w!]);
    expect((back!.data as Uint8Array[]).map((b) => Array.from(b))).toEqual(els.map((b) => Array.from(b)));
    expect((back!.data as Uint8Array[]).every((b) => b.buffer === p.bytes.buffer)).toBe(true);
    expect(unpackBytes(packBytes([]))).toEqual([]);
  });

  it('converts to and from the string[] onnxruntime takes, as UTF-8, at that boundary only', () => {
    const packed = packBytes(bytesOf(TEXT));
    expect(wireToOrtData(packed)).toEqual(TEXT);
    const out = ortToWireData(TEXT) as PackedBytes;
    expect(textOf(unpackBytes(out))).toEqual(TEXT);
    const nums = Float32Array.of(1, 2);
    expect(wireToOrtData(nums)).toBe(nums);
    expect(ortToWireData(nums)).toBe(nums);
    // onnxruntime-node keeps strings as UTF-8 C strings: what is not UTF-8 cannot reach it intact.
    expect(wireToOrtData(packBytes([Uint8Array.of(0x61, 0xff)]))).toEqual(['a\ufffd']);
  });

  describe('a BYTES Identity model round-trips UTF-8 text in process and in a worker thread', () => {
    let dir: string;
    let model: string;
    const runners: InferenceRunner[] = [];
    const config = parseModelConfig({ max_batch_size: 8 }, 'identity');
    const input: InferTensor = { name: 'in_BYTES', datatype: 'BYTES', shape: [2, 2], data: bytesOf(TEXT.slice(0, 4)) };

    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'tandem-wire-'));
      model = join(dir, 'model.onnx');
      writeFileSync(model, buildIdentityModel(['BYTES']));
    });
    afterAll(async () => {
      await Promise.all(runners.map((r) => r.release()));
      rmSync(dir, { recursive: true, force: true });
    });

    const check = async (r: InferenceRunner): Promise<void> => {
      runners.push(r);
      const [out] = await r.run([input]);
      expect([out!.name, out!.datatype, out!.shape]).toEqual(['out_BYTES', 'BYTES', [2, 2]]);
      expect(textOf(out!.data)).toEqual(TEXT.slice(0, 4));
    };
    it('in process', async () => check(await ModelRunner.load(model, config)));
    it('in a worker thread', async () => check(await WorkerModelRunner.load(model, config, { kind: 'cpu', intraOpThreads: 1 })));
  });
});
