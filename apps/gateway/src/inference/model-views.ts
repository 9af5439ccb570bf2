import type { ModelConfig, ModelState } from '@tandem/inference';

export type AutoscalingConfig = NonNullable<ModelConfig['autoscaling']>;

/** A ready model version as the control loops (autoscaler, co-location) see it. */
export interface ServingVersion {
  model: string;
  version: string;
  device: 'cpu' | 'gpu';
  /** CPU threads one replica holds (CPU models; 0 for GPU models). */
  threadsPerReplica: number;
  /** The loaded instance's own autoscaling block (absent: fixed replicas). */
  autoscaling: AutoscalingConfig | undefined;
  replicas: number;
  queueDepth: number;
}

/** A model version on disk and where it stands in this process. */
export interface VersionStatus {
  model: string;
  version: string;
  state: ModelState | 'not loaded';
  error?: string;
  replicas: number;
  queueDepth: number;
}
