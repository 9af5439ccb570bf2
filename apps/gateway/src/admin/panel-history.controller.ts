import { Controller, Get, Query } from '@nestjs/common';
import { z } from 'zod';
import { parseInput } from '@tandem/shared';
import { HISTORY_WINDOW_S, PanelHistoryService } from '../admin-panel/panel-history.service';
import type { HistoryView } from '../admin-panel/panel-history.types';

const historyQuery = z
  .object({
    window: z.coerce
      .number()
      .int('window must be whole seconds')
      .min(10, 'window must be ≥ 10 s')
      .max(HISTORY_WINDOW_S, `window must be ≤ ${HISTORY_WINDOW_S} s`)
      .optional(),
  })
  .strict();

/** `GET /admin/api/history?window=900`: the panel's charts (sampled in this gateway). */
@Controller('admin/api/history')
export class PanelHistoryController {
  constructor(private readonly history: PanelHistoryService) {}

  @Get()
  get(@Query() q: unknown): HistoryView {
    return this.history.view(parseInput(historyQuery, q, 'query').window);
  }
}
