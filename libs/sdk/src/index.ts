/**
 * @tandem/sdk: what user code (node models, batch tasks, reducers) imports. Everything here is
 * plain TypeScript with no dependency on the rest of Tandem, so user bundles can carry a copy.
 */
export * from './tensor';
export * from './errors';
export * from './model';
export * from './task';
