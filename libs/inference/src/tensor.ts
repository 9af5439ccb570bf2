import type { OipDatatype, TensorData } from './datatypes';

/** A decoded tensor in the domain: transport-independent (REST JSON/binary and gRPC decode to this). */
export interface InferTensor {
  name: string;
  datatype: OipDatatype;
  shape: number[];
  data: TensorData;
}

/** Declared (static) signature of a model input or output; -1 marks a variable dimension. */
export interface TensorSpec {
  name: string;
  datatype: OipDatatype;
  shape: number[];
}

export interface ModelSignature {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}
