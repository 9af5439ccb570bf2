/** Wire shapes as @grpc/proto-loader delivers them (keepCase, longs as strings, defaults on). */
export type Long = string | number;

export interface InferParameterWire {
  bool_param?: boolean;
  int64_param?: Long;
  string_param?: string;
  parameter_choice?: 'bool_param' | 'int64_param' | 'string_param';
}

export interface InferTensorContentsWire {
  bool_contents?: boolean[];
  int_contents?: number[];
  int64_contents?: Long[];
  uint_contents?: number[];
  uint64_contents?: Long[];
  fp32_contents?: number[];
  fp64_contents?: number[];
  bytes_contents?: Buffer[];
}

export interface InferInputTensorWire {
  name: string;
  datatype: string;
  shape: Long[];
  parameters?: Record<string, InferParameterWire>;
  contents?: InferTensorContentsWire | null;
}

export interface ModelInferRequestWire {
  model_name: string;
  model_version: string;
  id: string;
  parameters?: Record<string, InferParameterWire>;
  inputs: InferInputTensorWire[];
  outputs: { name: string; parameters?: Record<string, InferParameterWire> }[];
  raw_input_contents: Buffer[];
  /** Set by the hand-written deserializer when the message is not valid protobuf (INVALID_ARGUMENT). */
  malformed?: string;
}

export interface InferOutputTensorWire {
  name: string;
  datatype: string;
  shape: number[];
  contents?: InferTensorContentsWire;
}

export interface ModelInferResponseWire {
  model_name: string;
  model_version: string;
  id: string;
  outputs: InferOutputTensorWire[];
  raw_output_contents: Buffer[];
}
