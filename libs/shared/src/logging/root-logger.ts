/**
 * The process's one pino root logger as a Nest provider: components log through
 * `child({ component })` of it, so every line shares its destination, level and redaction.
 */
export const ROOT_LOGGER = Symbol('ROOT_LOGGER');
