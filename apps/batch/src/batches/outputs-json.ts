/**
 * A chunk's outputs are stored as JSON. A user task's outputs are serialized inside the attempt
 * (so a BigInt or a cycle fails the chunk, not the commit); the commit reuses that text instead
 * of serializing the same array again (the largest cost of a 30 M-item chord).
 */
const serialized = new WeakMap<readonly unknown[], string>();

/** JSON of `outputs`, or an Error naming `what` when they cannot be stored; kept for the commit. */
export function serializeOutputs(outputs: readonly unknown[], what: string): string {
  let json: string;
  try {
    json = JSON.stringify(outputs);
  } catch (e) {
    throw new Error(`${what} cannot be stored as JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  serialized.set(outputs, json);
  return json;
}

/** The JSON `serializeOutputs` made for this very array, or a fresh serialization. */
export function outputsJson(outputs: readonly unknown[]): string {
  return serialized.get(outputs) ?? JSON.stringify(outputs);
}
