export interface InferBenchResult {
  inferItemsS: number | null;
  rawItemsS: number | null;
  ratio: number | null;
}

/** `infer` through the batch path is not wired yet (see the report); the figures stay null. */
export async function runInferBench(): Promise<InferBenchResult> {
  console.log('infer (ppocr_cls): not measured: the batch `infer` task is not wired to @tandem/inference yet');
  return { inferItemsS: null, rawItemsS: null, ratio: null };
}
