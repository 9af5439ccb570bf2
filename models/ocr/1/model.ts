import { join } from 'node:path';
import { defineModel, InputError, textTensor } from '@tandem/sdk';
import { readClasses } from './ctc';
import { DICTIONARY_FILE } from './limits';
import { loadOpenCv } from './opencv';
import { readText, type OcrState } from './pipeline';

/**
 * `ocr`: PNG/JPEG bytes in, one text element per detected line out (top to bottom), on
 * PaddleOCR's PP-OCRv4 weights. Detection, direction classification and recognition are the
 * repository models ppocr_det, ppocr_cls and ppocr_rec (called through ctx.infer, Triton's BLS);
 * this model decodes, cuts lines out and decodes CTC. See pipeline.ts.
 */
export default defineModel<OcrState>({
  async initialize(ctx) {
    const [cv, classes] = await Promise.all([loadOpenCv(), readClasses(join(ctx.dir, DICTIONARY_FILE))]);
    ctx.log.info('ocr pipeline ready', { classes: classes.length });
    return { cv, classes };
  },

  async execute(inputs, state, ctx, info) {
    // A warm-up batch (empty BYTES) must not call the sub-models, which may still be loading.
    if ('warmup' in info && info.warmup === true) return { text: textTensor([]) };
    const image = inputs.image;
    if (!image || !Array.isArray(image.data)) throw new InputError("input 'image' must be a BYTES tensor holding PNG or JPEG bytes");
    if (image.data.length !== 1) throw new InputError(`input 'image' holds ${image.data.length} elements; send one image per request`);
    const lines = await readText(state, ctx.infer.bind(ctx), image.data[0]!, info.signal);
    return { text: textTensor(lines.map((l) => l.text)) };
  },
});
