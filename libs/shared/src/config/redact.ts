/**
 * Redaction for anything that may print configuration: error messages, launcher lines, logs.
 * Config errors used to echo the bad value (`got "..."`), which put database passwords and API
 * keys into terminals, CI logs and log shippers.
 */

/** Names whose values are secrets as a whole (TANDEM_ADMIN_KEY, *_TOKEN, *_PASSWORD, ...). */
const SECRET_NAME = /KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL/i;

/** `scheme://user:password@host` (the password may itself hold `@` or `:`; the last `@` ends it). */
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:@/?#]*):([^\s/?#]*)@/gi;
/** `?password=…` / `&sslpassword=…` and the like in connection strings' query parameters. */
const QUERY_SECRET = /([?&][\w.-]*(?:password|passwd|pwd|token|secret|key)[\w.-]*=)[^&\s#"']*/gi;

export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name);
}

/** Replaces the password of every URL in `text` with `***` (`postgres://user:***@host/db`). */
export function redactUrls(text: string): string {
  return text.replace(URL_PASSWORD, (_m, head: string) => `${head}:***@`).replace(QUERY_SECRET, '$1***');
}

/**
 * How a variable's value may be shown: never for secret names, URLs without their passwords,
 * anything else as it is.
 */
export function displayValue(name: string, value: string): string {
  if (isSecretName(name)) return '***';
  return redactUrls(value);
}

/** `text` with every occurrence of `secret` (at least 4 characters, so `***` stays readable) masked. */
export function maskSecret(text: string, secret: string | undefined): string {
  if (!secret || secret.length < 4) return text;
  return text.split(secret).join('***');
}
