import { hash as digestOnce, randomBytes } from 'node:crypto';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { AuditLogRepository, type ApiKeyEntity } from '@tandem/persistence';
import { DomainException, ErrorCode } from '@tandem/shared';
import { ApiKeyRepository } from './api-key.repository';
import { AUTH_OPTIONS, type AuthOptions } from './auth.options';
import { ANONYMOUS, hasScope, SCOPES, type ApiKeyScope, type Principal } from './principal';
import { RateLimiter } from './rate-limiter';

/** How long a verified (or rejected) key is remembered; revocation takes effect within it. */
const CACHE_MS = 5_000;
/**
 * A key used within this long is verified again in the background before its entry expires, so
 * a key in use never waits for Postgres on the request path: the first requests after a few
 * seconds' pause used to (a lookup each, all at once, on a Postgres busy with a batch: 20-130 ms).
 */
const KEEP_FRESH_MS = 10 * 60_000;
const REFRESH_EVERY_MS = 1_000;

interface CacheEntry {
  principal: Principal | null;
  until: number;
  usedAt: number;
}
const BOOTSTRAP_ID = 'bootstrap';

export interface ApiKeyView {
  id: string;
  name: string;
  scopes: ApiKeyScope[];
  createdAt: string;
  createdBy: string;
  revokedAt: string | null;
}

// One-shot hash (Node ≥ 20.12): a quarter of createHash's cost, which was ~3 % of a small request.
const sha256 = (s: string): string => digestOnce('sha256', s, 'hex');
const view = (r: ApiKeyEntity): ApiKeyView => ({
  id: r.id,
  name: r.name,
  scopes: r.scopes,
  createdAt: r.createdAt.toISOString(),
  createdBy: r.createdBy,
  revokedAt: r.revokedAt ? r.revokedAt.toISOString() : null,
});

/**
 * API keys: random secrets shown once, stored as SHA-256 (they carry 256 bits of entropy, so a
 * slow hash adds nothing), verified through a short in-process cache so the hot inference path
 * does not hit Postgres per request.
 */
@Injectable()
export class ApiKeyService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('ApiKeys');
  private readonly cache = new Map<string, CacheEntry>();
  /**
   * Presented key → its hash, for keys found valid: a SHA-256 per request was 1.9 % of the
   * gateway's main thread on small requests. Only valid keys enter, so guessing cannot churn it.
   */
  private readonly hashes = new Map<string, string>();
  /** One lookup per key at a time: concurrent misses share it. */
  private readonly lookups = new Map<string, Promise<Principal | null>>();
  private refresher: NodeJS.Timeout | null = null;
  /** One bucket per key, shared by REST and gRPC. */
  private readonly perKey: RateLimiter;
  /** One bucket of failed authentications per client address. */
  private readonly failures: RateLimiter;

  constructor(
    private readonly keys: ApiKeyRepository,
    private readonly audit: AuditLogRepository,
    @Inject(AUTH_OPTIONS) readonly options: AuthOptions,
  ) {
    this.perKey = new RateLimiter(options.rateLimitRps, options.rateLimitBurst);
    this.failures = new RateLimiter(options.authFailRps, options.authFailBurst);
  }

  async onApplicationBootstrap(): Promise<void> {
    if (!this.options.enabled) {
      this.logger.warn('authentication is OFF (TANDEM_AUTH=off): every caller has every scope');
      return;
    }
    if (this.options.bootstrapAdminKey) await this.ensureBootstrapKey(this.options.bootstrapAdminKey);
    this.refresher = setInterval(() => this.refreshInUse(), REFRESH_EVERY_MS);
    this.refresher.unref();
  }

  onModuleDestroy(): void {
    if (this.refresher) clearInterval(this.refresher);
    this.refresher = null;
  }

  /** Re-verifies keys used in the last KEEP_FRESH_MS whose entry expires within 2 s; forgets the others once expired. */
  private refreshInUse(): void {
    const now = Date.now();
    for (const [hash, e] of this.cache) {
      if (now - e.usedAt > KEEP_FRESH_MS) {
        if (e.until <= now) this.cache.delete(hash);
      } else if (e.until - now < 2_000 && !this.lookups.has(hash)) void this.lookup(hash).catch(() => undefined);
    }
  }

  /** Makes `key` a valid admin key (id `bootstrap`); idempotent, follows TANDEM_ADMIN_KEY changes. */
  async ensureBootstrapKey(key: string): Promise<void> {
    await this.keys.upsert({ id: BOOTSTRAP_ID, name: 'bootstrap admin (TANDEM_ADMIN_KEY)', hash: sha256(key), scopes: ['admin'], createdBy: 'system' });
    this.cache.clear();
  }

  /** Creates a first admin key when none is active; returns the secret (print it once) or undefined. */
  async createFirstAdminKeyIfNone(): Promise<string | undefined> {
    if ((await this.keys.countActiveWithScope('admin')) > 0) return undefined;
    return (await this.create('first admin key', ['admin'], 'system')).key;
  }

  async create(name: string, scopes: ApiKeyScope[], actor: string): Promise<{ key: string } & ApiKeyView> {
    if (typeof name !== 'string' || !/^[\w .:@-]{1,80}$/.test(name)) throw DomainException.invalid('name must be 1-80 letters, digits, spaces or ._:@-');
    if (!Array.isArray(scopes) || scopes.length === 0 || scopes.some((s) => !SCOPES.includes(s))) {
      throw DomainException.invalid(`scopes must be a non-empty subset of ${SCOPES.join(', ')}`);
    }
    const id = randomBytes(6).toString('hex');
    const key = `tdm_${id}_${randomBytes(32).toString('base64url')}`;
    const row = await this.keys.insert({ id, name, hash: sha256(key), scopes: [...new Set(scopes)], createdBy: actor });
    await this.audit.record({ actor, action: 'api_key.create', target: `api_key:${id}`, details: { name, scopes: row.scopes } });
    return { key, ...view(row) };
  }

  async list(): Promise<ApiKeyView[]> {
    return (await this.keys.list()).map(view);
  }

  async revoke(id: string, actor: string): Promise<void> {
    if (!/^[\w-]{1,64}$/.test(id)) throw DomainException.invalid('bad key id');
    const row = await this.keys.findById(id);
    if (!row) throw DomainException.notFound(`no API key '${id}'`);
    if (!(await this.keys.revoke(id))) throw new DomainException(ErrorCode.Conflict, `API key '${id}' is already revoked`);
    this.cache.clear();
    this.hashes.clear();
    await this.audit.record({ actor, action: 'api_key.revoke', target: `api_key:${id}`, details: { name: row.name } });
  }

  /** The principal for a presented key, or null when unknown/revoked. */
  async verify(key: string): Promise<Principal | null> {
    if (!this.options.enabled) return ANONYMOUS;
    if (!plausibleKey(key)) return null;
    const hash = sha256(key);
    const known = this.cachedHash(hash);
    if (known !== undefined) return known;
    return this.lookups.get(hash) ?? this.lookup(hash);
  }

  /** What the cache knows of `key` now: its principal, null (invalid), or undefined (look it up). */
  private cached(key: string): Principal | null | undefined {
    if (!plausibleKey(key)) return null;
    const memo = this.hashes.get(key);
    const hash = memo ?? sha256(key);
    const p = this.cachedHash(hash);
    if (p && !memo) {
      if (this.hashes.size >= 10_000) this.hashes.clear();
      this.hashes.set(key, hash);
    }
    return p;
  }

  private cachedHash(hash: string): Principal | null | undefined {
    const now = Date.now();
    const hit = this.cache.get(hash);
    if (!hit) return undefined;
    hit.usedAt = now;
    return hit.until > now ? hit.principal : undefined;
  }

  /** Postgres's answer for `hash`, cached; one at a time per key. */
  private lookup(hash: string): Promise<Principal | null> {
    const p = this.fetchPrincipal(hash).finally(() => this.lookups.delete(hash));
    this.lookups.set(hash, p);
    return p;
  }

  private async fetchPrincipal(hash: string): Promise<Principal | null> {
    let row: ApiKeyEntity | null;
    try {
      row = await this.keys.findActiveByHash(hash);
    } catch (e) {
      // Postgres unreachable: keep serving keys we verified before (stale beats an outage),
      // and answer 503 (retryable) rather than 500 for keys we have never seen.
      const hit = this.cache.get(hash);
      if (hit) return hit.principal;
      // The driver's message can name database hosts: it goes to the log, never to the caller.
      this.logger.warn({ err: e }, 'API key lookup failed');
      throw DomainException.unavailable('cannot verify the API key right now', 2);
    }
    const principal = row ? { id: row.id, name: row.name, scopes: row.scopes } : null;
    if (this.cache.size > 10_000) this.cache.clear();
    const now = Date.now();
    this.cache.set(hash, { principal, until: now + CACHE_MS, usedAt: this.cache.get(hash)?.usedAt ?? now });
    return principal;
  }

  /**
   * 401 without a valid key, 403 without the scope (`authenticated`: any key will do), 429
   * past the key's rate limit or when `client` (the caller's address) failed too often; returns
   * who it is. REST and gRPC both come here, so their limits are the same buckets.
   */
  async authorize(bearer: string | undefined, access: ApiKeyScope | 'authenticated', address?: string): Promise<Principal> {
    const now = this.authorizeNow(bearer, access, address);
    if (now) return now;
    const client = clientOf(address);
    return this.admit(await this.verify(bearer!), bearer, access, client);
  }

  /**
   * `authorize` when the answer is known without waiting (no key, a blocked address, a key
   * verified within the cache's lifetime): the principal, or the same exception; undefined
   * when the key has to be looked up (then call `authorize`). Spares the REST hook a promise
   * per request on the hot path; nothing here has side effects before that decision.
   */
  authorizeNow(bearer: string | undefined, access: ApiKeyScope | 'authenticated', address?: string): Principal | undefined {
    if (!this.options.enabled) return ANONYMOUS;
    const client = clientOf(address);
    // A blocked address still gets in with a key we have verified before: behind a proxy or NAT
    // many callers share one address, and one of them guessing keys must not lock out the rest.
    const blocked = client === undefined ? 0 : this.failures.wait(client);
    if (blocked > 0 && !(bearer && this.knownValid(bearer))) {
      throw new DomainException(ErrorCode.RateLimited, 'too many failed authentication attempts from this address', { retryAfterS: blocked });
    }
    if (!bearer) return this.admit(null, bearer, access, client);
    const p = this.cached(bearer);
    return p === undefined ? undefined : this.admit(p, bearer, access, client);
  }

  private admit(p: Principal | null, bearer: string | undefined, access: ApiKeyScope | 'authenticated', client: string | undefined): Principal {
    if (!p) {
      if (client !== undefined) this.failures.take(client);
      throw new DomainException(ErrorCode.Unauthenticated, bearer ? 'invalid or revoked API key' : 'missing API key: send "Authorization: Bearer <key>"');
    }
    if (access !== 'authenticated' && !hasScope(p, access)) throw new DomainException(ErrorCode.PermissionDenied, `this key lacks the '${access}' scope`);
    const wait = this.perKey.take(p.id);
    if (wait > 0) {
      throw new DomainException(ErrorCode.RateLimited, `rate limit of ${this.options.rateLimitRps} requests/s for this key exceeded`, { retryAfterS: wait });
    }
    return p;
  }

  /** Whether this process has seen `key` valid (a hash and a map lookup; no database). */
  private knownValid(key: string): boolean {
    if (!plausibleKey(key)) return false;
    return !!this.cache.get(this.hashes.get(key) ?? sha256(key))?.principal;
  }
}

/** `Authorization: Bearer <key>` → key; undefined for anything else. */
export function bearerToken(header: string | string[] | undefined): string | undefined {
  const h = Array.isArray(header) ? header[0] : header;
  const m = h ? /^Bearer\s+(\S+)\s*$/i.exec(h) : null;
  return m?.[1];
}

/** An IPv4 client on a dual-stack socket shows up as ::ffff:a.b.c.d; one bucket either way. */
function clientOf(address: string | undefined): string | undefined {
  return address?.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '');
}

/** Keys outside these lengths are never valid: refused without hashing them. */
function plausibleKey(key: string): boolean {
  return key.length >= 16 && key.length <= 512;
}
