import type { Tensor } from '@tandem/sdk';
import type { OipDatatype } from './datatypes';

/** A decoded tensor in the domain: the SDK's Tensor (REST JSON/binary and gRPC decode to this; BYTES elements are raw bytes). */
export type InferTensor = Tensor;

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
