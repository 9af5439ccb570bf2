/** A GPU model's memory per replica: its config's `device.memory_mib`, or measured at load. */
export interface ModelDeviceInfo {
  kind: 'gpu';
  memory_mib: number | null;
  memory_source: 'declared' | 'measured' | null;
}

/** OIP v2 wire types (JSON part), as in the KServe/Triton spec. */
export type OipParameters = Record<string, string | number | boolean>;

export interface OipTensorMetadata {
  name: string;
  datatype: string;
  shape: number[];
}

export interface OipOutputTensor {
  name: string;
  datatype: string;
  shape: number[];
  parameters?: OipParameters;
  data?: (number | boolean | string)[];
}

export interface OipInferResponse {
  model_name: string;
  model_version: string;
  id?: string;
  parameters?: OipParameters;
  outputs: OipOutputTensor[];
}

export interface OipModelMetadata {
  name: string;
  versions: string[];
  platform: string;
  inputs: OipTensorMetadata[];
  outputs: OipTensorMetadata[];
  /** Tandem's extension, GPU models only: the device memory one replica holds and where the figure comes from. */
  device?: ModelDeviceInfo;
}
