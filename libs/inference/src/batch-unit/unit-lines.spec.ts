import { describe, expect, it } from 'vitest';
import type { InferTensor } from '../tensor';
import { answerLines, type LinesModel, type UnitLinesTask } from './unit-lines';

const ENDPOINT = '/v2/models/m/infer';
const W = 100;

/** What the model got in one run: rows, and whether x came as a view of a bigger buffer (the arena). */
interface Seen {
  rows: number;
  view: boolean;
}

/**
 * A model that gives its inputs back: x_out = x (FP32 [-1, 100]) and, with `withY`, y_sum = the
 * row sums of y (FP32 [-1, 70]), so an answer shows every value the decoder produced.
 */
function echoModel(seen: Seen[], withY = true): LinesModel {
  return {
    version: '1',
    maxBatchSize: 64,
    signature: {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, W] }, ...(withY ? [{ name: 'y', datatype: 'FP32' as const, shape: [-1, 70] }] : [])],
      outputs: [{ name: 'x_out', datatype: 'FP32', shape: [-1, W] }, ...(withY ? [{ name: 'y_sum', datatype: 'FP32' as const, shape: [-1, 1] }] : [])],
    },
    run: (inputs, outputs) => {
      const x = inputs.find((t) => t.name === 'x')!;
      const rows = x.shape[0]!;
      const xd = x.data as Float32Array;
      seen.push({ rows, view: xd.byteLength < xd.buffer.byteLength });
      const all: InferTensor[] = [{ name: 'x_out', datatype: 'FP32', shape: [rows, W], data: Float32Array.from(xd) }];
      const y = inputs.find((t) => t.name === 'y');
      if (y) {
        const yd = y.data as Float32Array;
        const sums = new Float32Array(rows);
        for (let r = 0; r < rows; r++) for (let k = 0; k < 70; k++) sums[r]! += yd[r * 70 + k]!;
        all.push({ name: 'y_sum', datatype: 'FP32', shape: [rows, 1], data: sums });
      }
      return Promise.resolve(outputs ? all.filter((t) => outputs.includes(t.name)) : all);
    },
  };
}

const nums = (n: number, f: (i: number) => string): string => `[${Array.from({ length: n }, (_, i) => f(i)).join(',')}]`;
const x = (data: string, shape = `[1,${W}]`, extra = ''): string => `{"name":"x","shape":${shape},"datatype":"FP32"${extra},"data":${data}}`;
const y = (v = 1): string => `{"name":"y","datatype":"FP32","shape":[1,70],"data":${nums(70, (i) => String((i % 3) - v))}}`;
const line = (id: string, inputs: string[], body = '', url = ENDPOINT): string =>
  `{"custom_id":"${id}","method":"POST","url":"${url}","body":{${body}"inputs":[${inputs.join(',')}]}}`;

function task(lines: string[], duplicates: number[] = []): UnitLinesTask {
  const data = Buffer.from(lines.join('\n'));
  const ends: number[] = [];
  let at = 0;
  for (const l of lines) {
    at += Buffer.byteLength(l);
    ends.push(at);
    at++;
  }
  return { endpoint: ENDPOINT, model: 'm', data, lines: lines.map((_, i) => i + 1), ends, duplicates, maxRows: 32 };
}

describe('answerLines: the fast JSON path answers every line exactly as JSON.parse and the gateway decoder do', () => {
  const ints = (v: number): string => nums(W, (i) => String(((i + v) % 3) - 1));
  let seed = 3;
  const rnd = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const floats = (): string =>
    nums(W, (i) => [String(rnd() * 2 - 1), String(Math.fround(rnd())), (rnd() * 1e6).toExponential(5), String(Math.round(rnd() * 1e17))][i % 4]!);

  const lines = [
    ...Array.from({ length: 5 }, (_, i) => line(`int${i}`, [x(ints(i)), y()])),
    line('float', [x(floats()), y(0)]),
    line('spaces', [x(ints(1).replace(/,/g, ' , ').replace('[', '[ ')), y()]),
    line('data-first', [`{"data":${ints(2)},"name":"x","datatype":"FP32","shape":[1,${W}]}`, y()]),
    line('y-first', [y(), x(ints(0))]),
    line('two-rows', [
      x(
        nums(2 * W, (i) => String(i % 2)),
        `[2,${W}]`,
      ),
      `{"name":"y","datatype":"FP32","shape":[2,70],"data":${nums(140, String)}}`,
    ]),
    line('nested', [x(`[${ints(0)}]`), y()]),
    line('nested-deep', [x(`[[${ints(0)}]]`), y()]),
    line('fp64', [x(ints(0)).replace('"FP32"', '"FP64"'), y()]),
    line('int64', [x(ints(0)).replace('"FP32"', '"INT64"'), y()]),
    line('bytes', [x(ints(0)).replace('"FP32"', '"BYTES"'), y()]),
    line('count', [x(nums(W + 1, String)), y()]),
    line('params', [x(ints(0), undefined, ',"parameters":{}'), y()]),
    line('binsize', [x(ints(0), undefined, `,"parameters":{"binary_data_size":${4 * W}}`), y()]),
    line('long-param', [x(ints(0)), y()], `"parameters":{"p":${ints(0)}},`),
    line('outputs', [x(ints(2)), y()], '"outputs":[{"name":"y_sum"}],'),
    line('bad-output', [x(ints(2)), y()], '"outputs":[{"name":"nope"}],'),
    line('binary-out', [x(ints(2)), y()], '"parameters":{"binary_data_output":true},'),
    line('id', [x(ints(0)), y()], '"id":"req-7",'),
    line('nan', [x(ints(0).replace(',0,', ',NaN,')), y()]),
    line('inf', [x(ints(0).replace(',0,', ',-Infinity,')), y()]),
    line('leading-zero', [x(ints(0).replace(',0,', ',00,')), y()]),
    line('dot', [x(ints(0).replace(',0,', ',1.,')), y()]),
    line('exp', [x(ints(0).replace(',0,', ',1e,')), y()]),
    line('plus', [x(ints(0).replace(',0,', ',+1,')), y()]),
    line('string-elem', [x(ints(0).replace(',0,', ',"0",')), y()]),
    line('null-elem', [x(ints(0).replace(',0,', ',null,')), y()]),
    line('bool-elem', [x(ints(0).replace(',0,', ',true,')), y()]).replace('"FP32"', '"BOOL"'),
    line('huge', [x(ints(0).replace(',0,', ',1e39,')), y()]),
    line('missing-y', [x(ints(0))]),
    line('dup', [x(ints(0)), y()]),
    line('wrong-url', [x(ints(0)), y()], '', '/v2/models/other/infer'),
    line('bad-url', [x(ints(0)), y()], '', '/v2/nope'),
    line('escaped\\u0041', [x(ints(0)), y()]),
    `{"custom_id":"method","method":"GET","url":"${ENDPOINT}","body":{}}`,
    line('truncated', [x(ints(0)), y()]).slice(0, -3),
    '[1,2,3]',
    '',
    ...Array.from({ length: 40 }, (_, i) => line(`tail${i}`, [x(ints(i)), y()])),
  ];

  it('same answers, line for line, for good lines and every kind of bad one (a two-input model)', async () => {
    const dup = [lines.findIndex((l) => l.includes('"dup"')) + 1];
    const fastSeen: Seen[] = [];
    const slowSeen: Seen[] = [];
    const fast = await answerLines(task(lines, dup), echoModel(fastSeen));
    const slow = await answerLines(task(lines, dup), echoModel(slowSeen), { fastJson: false });
    expect(fast).toHaveLength(lines.length);
    for (let i = 0; i < lines.length; i++) expect([i, fast[i]]).toEqual([i, slow[i]]);
    // Not vacuous: good lines are answered, bad ones refused, with what the online path says.
    const byId = new Map(fast.map((a) => [a.customId, a]));
    const body = (id: string): { outputs: { name: string; data: number[] }[]; id?: string } => JSON.parse((byId.get(id) as { body: string }).body);
    expect(body('int1').outputs[0]!.data.slice(0, 4)).toEqual([0, 1, -1, 0]);
    expect(body('float').outputs[0]!.data).toEqual(Array.from(Float32Array.from(JSON.parse(lines[5]!).body.inputs[0].data as number[])));
    expect(body('id').id).toBe('req-7');
    expect(body('outputs').outputs.map((o) => o.name)).toEqual(['y_sum']);
    const status = (id: string): number | undefined => (byId.get(id) as { status?: number }).status;
    const refused = [
      'fp64',
      'int64',
      'bytes',
      'count',
      'binsize',
      'bad-output',
      'binary-out',
      'missing-y',
      'dup',
      'bool-elem',
      'string-elem',
      'null-elem',
      'bad-url',
      'method',
    ];
    expect(refused.map(status)).toEqual(Array(refused.length).fill(400));
    const answered = ['nested', 'nested-deep', 'params', 'long-param', 'huge', 'data-first', 'y-first', 'spaces', 'two-rows', 'escapedA', 'tail39'];
    expect(answered.map((id) => 'body' in byId.get(id)!)).toEqual(Array(answered.length).fill(true));
    const notJson = fast.filter((a) => 'status' in a && a.customId === null && /not valid JSON/.test(a.message)).map((a) => a.line);
    expect(notJson).toHaveLength(8); // nan, inf, 00, 1., 1e, +1, truncated, the empty line
    expect((byId.get('wrong-url') as { url?: string }).url).toBe('/v2/models/other/infer');
    expect(fastSeen.map((s) => s.rows)).toEqual(slowSeen.map((s) => s.rows));
  });

  it('a one-input model: model batches are views of the arena (no copy), with the values the slow path copies', async () => {
    const one = [
      ...Array.from({ length: 10 }, (_, i) => line(`a${i}`, [x(ints(i))])),
      line('float', [x(floats())]),
      line('bad', [x(ints(0).replace(',0,', ',00,'))]),
      line('wrong-type', [x(ints(0)).replace('"FP32"', '"FP16"')]),
      line('two-rows', [
        x(
          nums(2 * W, (i) => String(i % 2)),
          `[2,${W}]`,
        ),
      ]),
      line('data-first', [`{"data":${ints(2)},"name":"x","datatype":"FP32","shape":[1,${W}]}`]),
      ...Array.from({ length: 30 }, (_, i) => line(`b${i}`, [x(ints(i))])),
    ];
    const fastSeen: Seen[] = [];
    const slowSeen: Seen[] = [];
    const fast = await answerLines(task(one), echoModel(fastSeen, false));
    const slow = await answerLines(task(one), echoModel(slowSeen, false), { fastJson: false });
    expect(fast).toEqual(slow);
    expect(fast.filter((a) => 'body' in a)).toHaveLength(one.length - 2);
    // 32 rows at most: 10 + 1 + 2 + 1 + 18, then 12.
    expect(fastSeen).toEqual([
      { rows: 32, view: true },
      { rows: 12, view: true },
    ]);
    expect(slowSeen).toEqual([
      { rows: 32, view: false },
      { rows: 12, view: false },
    ]);
  });

  it('a model batch whose rows do not lie back to back in the arena is copied, with the same values', async () => {
    // The middle line asks for other outputs: a batch of its own, so the first batch's rows have a gap.
    const mixed = [line('m0', [x(ints(0))]), line('m1', [x(ints(1))], '"outputs":[{"name":"x_out"}],'), line('m2', [x(ints(2))])];
    const seenFast: Seen[] = [];
    const fast = await answerLines(task(mixed), echoModel(seenFast, false));
    const slow = await answerLines(task(mixed), echoModel([], false), { fastJson: false });
    expect(fast).toEqual(slow);
    expect(seenFast).toEqual([
      { rows: 2, view: false },
      { rows: 1, view: true },
    ]);
  });
});
