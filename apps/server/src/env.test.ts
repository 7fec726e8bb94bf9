import { describe, expect, it } from 'vitest';
import { EnvError, loadEnv } from './env.ts';

describe('loadEnv', () => {
  it('gives the documented defaults on an empty environment', () => {
    const c = loadEnv({});
    expect(c.port).toBe(3000);
    expect(c.host).toBe('127.0.0.1');
    expect(c.databaseUrl).toBeUndefined();
    expect(c.publicUrl.origin).toBe('http://localhost:3000');
    expect(c.signup).toBe('invite');
    expect(c.allowedIps).toBe('*');
    expect(c.apiRateLimit).toBe(36000);
    expect(c.checkpoint).toMatchObject({ every: 1000, intervalSeconds: 60, origin: 'localhost:3000/keyledger' });
    expect(c.checkpoint.dir).toMatch(/\.keyledger\/checkpoints$/);
    expect(c.checkpoint.keyPath).toMatch(/\.keyledger\/checkpoint\.key$/);
  });

  it('uses DATABASE_URL for migrations unless DATABASE_MIGRATION_URL is set', () => {
    expect(loadEnv({ DATABASE_URL: 'postgres://app@db/k' }).migrationUrl).toBe('postgres://app@db/k');
    expect(
      loadEnv({ DATABASE_URL: 'postgres://app@db/k', DATABASE_MIGRATION_URL: 'postgres://owner@db/k' }).migrationUrl,
    ).toBe('postgres://owner@db/k');
  });

  it('binds anonymous mode to loopback whatever HOST says', () => {
    expect(loadEnv({ KEYLEDGER_ANONYMOUS: '1', HOST: '0.0.0.0' }).host).toBe('127.0.0.1');
  });

  it('lists every problem at once, naming the variable and never echoing a secret', () => {
    const secret = 'short-secret-value';
    let error: unknown;
    try {
      loadEnv({
        PORT: 'eighty',
        KEYLEDGER_SIGNUP: 'sometimes',
        KEYLEDGER_ADMIN_API_KEY: secret,
        KEYLEDGER_ALLOWED_IPS: '10.0.0.0/33,not-an-ip',
        KEYLEDGER_OIDC_PROVIDERS: '{broken',
        DATABASE_URL: 'mysql://nope',
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(EnvError);
    const message = (error as Error).message;
    for (const name of [
      'PORT',
      'KEYLEDGER_SIGNUP',
      'KEYLEDGER_ADMIN_API_KEY',
      'KEYLEDGER_ALLOWED_IPS',
      'KEYLEDGER_OIDC_PROVIDERS',
      'DATABASE_URL',
    ]) {
      expect(message).toContain(name);
    }
    expect(message).toContain('10.0.0.0/33');
    expect(message).not.toContain(secret);
  });

  it('accepts IPv4 and IPv6 addresses and ranges', () => {
    const c = loadEnv({
      KEYLEDGER_ALLOWED_IPS: '10.0.0.0/8, 192.168.1.1 ,::1,2001:db8::/32',
      KEYLEDGER_TRUSTED_PROXIES: '127.0.0.1',
    });
    expect(c.allowedIps).toEqual(['10.0.0.0/8', '192.168.1.1', '::1', '2001:db8::/32']);
    expect(c.trustedProxies).toEqual(['127.0.0.1']);
  });

  it('refuses environment keys that start with kl_ (they would be checksum-checked and never match), without echoing them', () => {
    const key = `kl_${'a'.repeat(40)}`;
    for (const env of [{ KEYLEDGER_ADMIN_API_KEY: key }, { KEYLEDGER_API_KEYS: `${'b'.repeat(40)},${key}` }]) {
      let message = '';
      try {
        loadEnv(env);
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).toContain('may not start with kl_');
      expect(message).not.toContain(key);
    }
    expect(loadEnv({ KEYLEDGER_ADMIN_API_KEY: 'x'.repeat(40) }).adminApiKey).toBe('x'.repeat(40));
  });

  it('requires the Google client id and secret together', () => {
    expect(() => loadEnv({ KEYLEDGER_GOOGLE_CLIENT_ID: 'id' })).toThrow(/KEYLEDGER_GOOGLE_CLIENT_SECRET/);
  });

  it('parses OIDC providers and refuses unknown fields', () => {
    const providers = JSON.stringify([
      { id: 'corp', name: 'Corp SSO', issuer: 'https://sso.example.com', client_id: 'c', client_secret: 's' },
    ]);
    expect(loadEnv({ KEYLEDGER_OIDC_PROVIDERS: providers }).oidcProviders[0]?.id).toBe('corp');
    const extra = JSON.stringify([
      { id: 'corp', name: 'C', issuer: 'https://sso.example.com', client_id: 'c', client_secret: 's', x: 1 },
    ]);
    expect(() => loadEnv({ KEYLEDGER_OIDC_PROVIDERS: extra })).toThrow(EnvError);
  });
});
