// ONNX fixtures for tests and benches (identity per datatype, a compute-heavy "burn" model), written with
// protobufjs and a subset of onnx.proto; nothing here ships in models/.
import * as protobuf from 'protobufjs';

// The subset of onnx.proto (field numbers as upstream) needed to write a one-node graph.
const ONNX_PROTO = `
syntax = "proto3";
package onnx;
message OperatorSetIdProto { string domain = 1; int64 version = 2; }
message ModelProto {
  int64 ir_version = 1; string producer_name = 2; string producer_version = 3; string domain = 4;
  int64 model_version = 5; string doc_string = 6; GraphProto graph = 7; repeated OperatorSetIdProto opset_import = 8;
}
message TensorProto { repeated int64 dims = 1; int32 data_type = 2; string name = 8; bytes raw_data = 9; }
message NodeProto { repeated string input = 1; repeated string output = 2; string name = 3; string op_type = 4; string domain = 7; }
message GraphProto {
  repeated NodeProto node = 1; string name = 2; repeated TensorProto initializer = 5; string doc_string = 10;
  repeated ValueInfoProto input = 11; repeated ValueInfoProto output = 12;
}
message ValueInfoProto { string name = 1; TypeProto type = 2; }
message TypeProto {
  message Tensor { int32 elem_type = 1; TensorShapeProto shape = 2; }
  oneof value { Tensor tensor_type = 1; }
}
message TensorShapeProto {
  message Dimension { oneof value { int64 dim_value = 1; string dim_param = 2; } }
  repeated Dimension dim = 1;
}
`;

const FLOAT = 1; // onnx.TensorProto.DataType.FLOAT

/** onnx.TensorProto.DataType by OIP datatype name. */
export const ONNX_ELEM_TYPES = {
  FP32: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  BYTES: 8,
  BOOL: 9,
  FP16: 10,
  FP64: 11,
  UINT32: 12,
  UINT64: 13,
} as const;

function tensorInfo(name: string, elemType = FLOAT, width = 1): object {
  return { name, type: { tensorType: { elemType, shape: { dim: [{ dimParam: 'batch' }, { dimValue: width }] } } } };
}

function encodeModel(model: object): Uint8Array {
  const Model = protobuf.parse(ONNX_PROTO, { keepCase: false }).root.lookupType('onnx.ModelProto');
  const err = Model.verify(model);
  if (err) throw new Error(`onnx model: ${err}`);
  return Model.encode(Model.fromObject(model)).finish();
}

/**
 * Test fixture: one Identity per OIP datatype, `in_<DT>` [batch, 2] → `out_<DT>`, so the
 * gateway's codecs can be checked for every datatype onnxruntime supports.
 */
export function buildIdentityModel(
  types: readonly (keyof typeof ONNX_ELEM_TYPES)[] = Object.keys(ONNX_ELEM_TYPES) as (keyof typeof ONNX_ELEM_TYPES)[],
): Uint8Array {
  return encodeModel({
    irVersion: 8,
    producerName: 'tandem-generate-models',
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'identity',
      node: types.map((t) => ({ input: [`in_${t}`], output: [`out_${t}`], name: `id_${t}`, opType: 'Identity' })),
      input: types.map((t) => tensorInfo(`in_${t}`, ONNX_ELEM_TYPES[t], 2)),
      output: types.map((t) => tensorInfo(`out_${t}`, ONNX_ELEM_TYPES[t], 2)),
    },
  });
}

/** A fixed pseudo-random FP32 weight matrix (deterministic, scaled so tanh stays out of saturation). */
function weights(name: string, rows: number, cols: number, seed: number): object {
  const w = new Float32Array(rows * cols);
  let x = seed >>> 0;
  for (let i = 0; i < w.length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    w[i] = ((x / 2 ** 32) * 2 - 1) * (1.5 / Math.sqrt(rows));
  }
  return { name, dims: [rows, cols], dataType: FLOAT, rawData: Buffer.from(w.buffer) };
}

/**
 * Test/bench fixture `burn`: x FP32 [batch, 16] → y FP32 [batch, 1] through `layers` dense
 * tanh layers of width `width` (one shared weight matrix). Compute-heavy per item with tiny
 * items, so batch co-location tests run for seconds on a few MB of input.
 */
export function buildBurnModel(layers = 64, width = 256): Uint8Array {
  const node: object[] = [
    { input: ['x', 'w_in'], output: ['h0m'], name: 'in', opType: 'MatMul' },
    { input: ['h0m'], output: ['h0'], name: 'in_tanh', opType: 'Tanh' },
  ];
  for (let i = 1; i <= layers; i++) {
    node.push({ input: [`h${i - 1}`, 'w'], output: [`h${i}m`], name: `l${i}`, opType: 'MatMul' });
    node.push({ input: [`h${i}m`], output: [`h${i}`], name: `l${i}_tanh`, opType: 'Tanh' });
  }
  node.push({ input: [`h${layers}`, 'w_out'], output: ['y'], name: 'out', opType: 'MatMul' });
  return encodeModel({
    irVersion: 8,
    producerName: 'tandem-generate-models',
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'burn',
      node,
      initializer: [weights('w_in', 16, width, 1), weights('w', width, width, 2), weights('w_out', width, 1, 3)],
      input: [tensorInfo('x', FLOAT, 16)],
      output: [tensorInfo('y', FLOAT, 1)],
    },
  });
}
