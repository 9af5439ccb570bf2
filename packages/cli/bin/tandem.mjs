#!/usr/bin/env node
// Plain ESM (no build step), so `npx tandem` works straight after `npm ci`.
import { main } from '../src/main.mjs';

await main(process.argv);
