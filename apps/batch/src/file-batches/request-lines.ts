import { parseInferUrl, type InferUrl } from '@tandem/inference';
import { mapException } from '@tandem/shared';

// Lines are parsed and checked in the batch units (libs/inference batch-unit/unit-lines.ts);
// the URL grammar is theirs.
export { parseInferUrl, type InferUrl };

/** A model as the batch's lines run on it (opened in a unit). */
export interface LineModel {
  name: string;
  version: string;
  maxBatchSize: number;
}

/**
 * A line whose `url` is a valid infer URL other than the batch's endpoint: online's answer for
 * the model it names (404 for an unknown one, as the repository says), else a 400.
 */
export function wrongUrlFailure(url: string, endpoint: string, resolveModel: (u: InferUrl) => void): { status: number; message: string } {
  const u = parseInferUrl(url);
  if (!u) return { status: 400, message: `url must be /v2/models/<model>/infer (got "${url.slice(0, 200)}")` };
  try {
    resolveModel(u);
  } catch (e) {
    const m = mapException(e);
    return { status: m.status, message: m.error };
  }
  return { status: 400, message: `url "${url.slice(0, 200)}" is not the batch's endpoint "${endpoint}"` };
}
