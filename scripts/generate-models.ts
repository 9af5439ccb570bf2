import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
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
message NodeProto { repeated string input = 1; repeated string output = 2; string name = 3; string op_type = 4; string domain = 7; }
message GraphProto {
  repeated NodeProto node = 1; string name = 2; string doc_string = 10;
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

function tensorInfo(name: string): object {
  return { name, type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimParam: 'batch' }, { dimValue: 1 }] } } } };
}

/** The `scorer` model: input `x` FP32 [batch, 1] → output `score` = tanh(x). */
export function buildScorerModel(): Uint8Array {
  const root = protobuf.parse(ONNX_PROTO, { keepCase: false }).root;
  const Model = root.lookupType('onnx.ModelProto');
  const model = {
    irVersion: 8,
    producerName: 'tandem-generate-models',
    producerVersion: '1',
    modelVersion: 1,
    docString: 'score = tanh(x)',
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'scorer',
      node: [{ input: ['x'], output: ['score'], name: 'tanh', opType: 'Tanh' }],
      input: [tensorInfo('x')],
      output: [tensorInfo('score')],
    },
  };
  const err = Model.verify(model);
  if (err) throw new Error(`scorer model: ${err}`);
  return Model.encode(Model.fromObject(model)).finish();
}

/** Writes every generated model into `repo` (default ./models); returns the written paths. */
export function generateModels(repo = 'models'): string[] {
  const path = join(resolve(repo), 'scorer', '1', 'model.onnx');
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, buildScorerModel());
  return [path];
}

if (process.argv[1]?.endsWith('generate-models.js')) {
  for (const p of generateModels(process.argv[2])) process.stdout.write(`wrote ${p}\n`);
}
