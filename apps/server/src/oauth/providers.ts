import { createRemoteJWKSet, type JWTVerifyGetKey } from 'jose';
import type { ServerDeps } from '../deps.ts';

export const GOOGLE_ISSUER = 'https://accounts.google.com';
/** How long a provider may stay silent (discovery, token exchange, JWKS) before the sign-in is refused. */
export const DEFAULT_PROVIDER_TIMEOUT_MS = 10_000;

export interface OauthProvider {
  readonly id: string;
  readonly name: string;
  readonly type: 'google' | 'oidc';
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly scopes: readonly string[];
}

export interface ProviderMetadata {
  readonly issuer: string;
  readonly authorization_endpoint: string;
  readonly token_endpoint: string;
  readonly jwks_uri: string;
}

/** The provider did not answer in time, or answered something unusable. */
export class ProviderUnavailable extends Error {
  override readonly name = 'ProviderUnavailable';
}

export interface OauthOptions {
  readonly timeoutMs: number;
}

/** Rejects with ProviderUnavailable when `promise` takes longer than `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ProviderUnavailable(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The configured providers, their discovered metadata and JWKS, cached per server. */
export class OauthProviders {
  readonly providers: readonly OauthProvider[];
  private readonly metadata = new Map<string, Promise<ProviderMetadata>>();
  private readonly jwks = new Map<string, JWTVerifyGetKey>();

  constructor(
    deps: Pick<ServerDeps, 'config'>,
    readonly options: OauthOptions,
  ) {
    const list: OauthProvider[] = [];
    const google = deps.config.google;
    if (google) {
      list.push({
        id: 'google',
        name: 'Google',
        type: 'google',
        issuer: GOOGLE_ISSUER,
        clientId: google.clientId,
        clientSecret: google.clientSecret,
        scopes: ['openid', 'email', 'profile'],
      });
    }
    for (const p of deps.config.oidcProviders) {
      list.push({
        id: p.id,
        name: p.name,
        type: 'oidc',
        issuer: p.issuer.replace(/\/$/, ''),
        clientId: p.client_id,
        clientSecret: p.client_secret,
        scopes: p.scopes ?? ['openid', 'email', 'profile'],
      });
    }
    this.providers = list;
  }

  get(id: string): OauthProvider | undefined {
    return this.providers.find((p) => p.id === id);
  }

  /** OpenID discovery, fetched with the timeout; a success is cached, a failure is not. */
  discover(provider: OauthProvider): Promise<ProviderMetadata> {
    let cached = this.metadata.get(provider.id);
    if (!cached) {
      cached = this.fetchMetadata(provider);
      this.metadata.set(provider.id, cached);
      cached.catch(() => this.metadata.delete(provider.id));
    }
    return cached;
  }

  private async fetchMetadata(provider: OauthProvider): Promise<ProviderMetadata> {
    const url = `${provider.issuer}/.well-known/openid-configuration`;
    let body: unknown;
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(this.options.timeoutMs) });
      if (!response.ok) throw new ProviderUnavailable(`discovery answered ${response.status}`);
      body = await response.json();
    } catch (error) {
      if (error instanceof ProviderUnavailable) throw error;
      throw new ProviderUnavailable('discovery failed', { cause: error });
    }
    const m = body as Partial<Record<keyof ProviderMetadata, unknown>>;
    for (const field of ['issuer', 'authorization_endpoint', 'token_endpoint', 'jwks_uri'] as const) {
      if (typeof m[field] !== 'string') throw new ProviderUnavailable(`discovery lacks ${field}`);
    }
    // The issuer a provider names must be the one it was configured with (OpenID Connect Discovery §4.3).
    if ((m.issuer as string).replace(/\/$/, '') !== provider.issuer) {
      throw new ProviderUnavailable('discovery names another issuer');
    }
    return m as ProviderMetadata;
  }

  keys(provider: OauthProvider, metadata: ProviderMetadata): JWTVerifyGetKey {
    let set = this.jwks.get(provider.id);
    if (!set) {
      set = createRemoteJWKSet(new URL(metadata.jwks_uri), { timeoutDuration: this.options.timeoutMs });
      this.jwks.set(provider.id, set);
    }
    return set;
  }
}

const registries = new WeakMap<object, OauthProviders>();
const optionOverrides = new WeakMap<object, Partial<OauthOptions>>();

/** Test hook: a shorter provider timeout for one server's dependencies (set before the first OAuth request). */
export function configureOauth(deps: ServerDeps, options: Partial<OauthOptions>): void {
  optionOverrides.set(deps, options);
  registries.delete(deps);
}

export function oauthProviders(deps: ServerDeps): OauthProviders {
  let registry = registries.get(deps);
  if (!registry) {
    registry = new OauthProviders(deps, { timeoutMs: DEFAULT_PROVIDER_TIMEOUT_MS, ...optionOverrides.get(deps) });
    registries.set(deps, registry);
  }
  return registry;
}

/** `GET /v1/auth/oauth/providers` and tRPC `auth.providers`: each configured provider with the URL that starts it. */
export function providerList(deps: ServerDeps) {
  const base = deps.config.publicUrl.origin;
  return oauthProviders(deps).providers.map((p) => ({
    id: p.id,
    name: p.name,
    type: p.type,
    login_url: `${base}/v1/auth/oauth/${p.id}/login`,
  }));
}
