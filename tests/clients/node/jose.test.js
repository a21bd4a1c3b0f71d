// panva's jose verifying keystead's tokens the way a resource server does: the JWKS URL from
// discovery, createRemoteJWKSet, jwtVerify with issuer, audience, typ and algorithms — for
// client_credentials access tokens and ID tokens, RS256 and a tenant that chose ES256; tampered
// tokens and another tenant's tokens are refused; and tokens keep verifying across key rotation.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as jose from 'jose';

import { Server, loginThroughForm, uniqueId } from './keystead.js';

const REDIRECT_URI = 'https://rs.clients.test/callback';

let server;

before(async () => {
  server = await Server.start();
});

after(async () => {
  await server?.stop();
});

/**
 * A new child tenant (or the control plane) with an API, a confidential web client granted that
 * API, and a user; plus its discovery document.
 */
async function setUpTenant({ child = true, signingAlg } = {}) {
  let tenant;
  if (child) {
    tenant = uniqueId('jose');
    const json = { id: tenant, friendly_name: `jose ${tenant}` };
    if (signingAlg) json.signing_alg = signingAlg;
    await server.api('POST', '/tenants', { json });
  }
  const audience = `https://${uniqueId('rs')}.clients.test/`;
  await server.api('POST', '/resource-servers', {
    tenant, json: { name: 'jose API', identifier: audience, scopes: [{ value: 'read:things' }] },
  });
  const client = await server.api('POST', '/clients', {
    tenant,
    json: {
      name: 'jose RP', app_type: 'regular_web', callbacks: [REDIRECT_URI],
      grant_types: ['authorization_code', 'client_credentials'],
      token_endpoint_auth_method: 'client_secret_post',
    },
  });
  await server.api('POST', '/client-grants', {
    tenant, json: { client_id: client.client_id, audience, scope: ['read:things'] },
  });
  const user = await server.createUser(tenant);
  const issuer = server.issuer(tenant);
  const r = await fetch(`${issuer}.well-known/openid-configuration`);
  assert.equal(r.status, 200);
  const md = await r.json();
  assert.equal(md.issuer, issuer);
  assert.equal(md.jwks_uri, `${issuer}.well-known/jwks.json`);
  return { tenant, issuer, audience, client, user, md };
}

async function tokenRequest(t, params) {
  const r = await fetch(t.md.token_endpoint, {
    method: 'POST',
    body: new URLSearchParams({
      client_id: t.client.client_id, client_secret: t.client.client_secret, ...params,
    }),
  });
  const body = await r.json();
  assert.equal(r.status, 200, JSON.stringify(body));
  return body;
}

async function clientCredentialsToken(t) {
  const body = await tokenRequest(t, { grant_type: 'client_credentials', audience: t.audience });
  return body.access_token;
}

/** Code flow with PKCE through the hosted login form; returns the token response and nonce. */
async function login(t) {
  const verifier = randomBytes(32).toString('base64url');
  const nonce = randomBytes(12).toString('base64url');
  const url = new URL(t.md.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: 'code', client_id: t.client.client_id, redirect_uri: REDIRECT_URI,
    scope: 'openid profile email', audience: t.audience, state: uniqueId('st'), nonce,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  });
  const callback = new URL(await loginThroughForm(url,
    { email: t.user.email, redirectUri: REDIRECT_URI }));
  const code = callback.searchParams.get('code');
  assert.ok(code, callback.href);
  const tokens = await tokenRequest(t, {
    grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier,
  });
  assert.equal(typeof tokens.id_token, 'string');
  return { ...tokens, nonce };
}

/** Re-encodes a JWT with a changed header and/or payload, keeping the original signature. */
function forge(token, { header, payload } = {}) {
  const [h, p, s] = token.split('.');
  const enc = (part, change) => (change
    ? Buffer.from(JSON.stringify(change(JSON.parse(Buffer.from(part, 'base64url').toString()))))
      .toString('base64url')
    : part);
  return [enc(h, header), enc(p, payload), s].join('.');
}

async function assertRefused(promise, ErrorType, check = () => {}) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof ErrorType,
      `expected ${ErrorType.name}, got ${err?.name}: ${err?.message}`);
    check(err);
    return true;
  });
}

/** A remote JWKS set that counts its fetches (jose's documented customFetch hook). */
function countingJWKS(url, options = {}) {
  const counter = { fetches: 0 };
  const jwks = jose.createRemoteJWKSet(new URL(url), {
    ...options,
    [jose.customFetch]: (u, init) => {
      counter.fetches += 1;
      return fetch(u, init);
    },
  });
  return { jwks, counter };
}

describe('jose verifying keystead tokens', () => {
  let a;     // child tenant, RS256 (the default)
  let es;    // child tenant with signing_alg ES256
  let cp;    // the control plane
  let jwksA;

  before(async () => {
    a = await setUpTenant();
    es = await setUpTenant({ signingAlg: 'ES256' });
    cp = await setUpTenant({ child: false });
    jwksA = jose.createRemoteJWKSet(new URL(a.md.jwks_uri));
  });

  it('verifies a client_credentials access token (RS256, at+jwt) via discovered JWKS', async () => {
    const token = await clientCredentialsToken(a);
    const { payload, protectedHeader } = await jose.jwtVerify(token, jwksA, {
      issuer: a.issuer, audience: a.audience, typ: 'at+jwt', algorithms: ['RS256'],
      requiredClaims: ['iat', 'exp', 'sub', 'jti'],
    });
    assert.equal(protectedHeader.alg, 'RS256');
    assert.equal(protectedHeader.typ, 'at+jwt');
    assert.ok(jwksA.jwks().keys.some((k) => k.kid === protectedHeader.kid && k.kty === 'RSA'));
    assert.ok(jwksA.jwks().keys.every((k) => k.d === undefined), 'no private material published');
    assert.equal(payload.sub, `${a.client.client_id}@clients`);
    assert.equal(payload.azp, a.client.client_id);
    assert.equal(payload.scope, 'read:things');
    assert.equal(payload.tenant_id, a.tenant);
    assert.ok(payload.exp > payload.iat);

    await assertRefused(jose.jwtVerify(token, jwksA,
      { issuer: a.issuer, audience: 'https://other.clients.test/' }),
    jose.errors.JWTClaimValidationFailed, (e) => assert.equal(e.claim, 'aud'));
    await assertRefused(jose.jwtVerify(token, jwksA, { issuer: cp.issuer, audience: a.audience }),
      jose.errors.JWTClaimValidationFailed, (e) => assert.equal(e.claim, 'iss'));
    await assertRefused(jose.jwtVerify(token, jwksA, { algorithms: ['ES256'] }),
      jose.errors.JOSEAlgNotAllowed);
    await assertRefused(jose.jwtVerify(token, jwksA,
      { currentDate: new Date((payload.exp + 60) * 1000) }), jose.errors.JWTExpired);
  });

  it('verifies the ID token and access token of a login', async () => {
    const tokens = await login(a);
    const { payload, protectedHeader } = await jose.jwtVerify(tokens.id_token, jwksA, {
      issuer: a.issuer, audience: a.client.client_id, algorithms: ['RS256'],
      requiredClaims: ['iat', 'exp', 'sub', 'nonce', 'auth_time', 'at_hash'],
    });
    assert.equal(protectedHeader.typ, 'JWT');
    assert.equal(payload.sub, a.user.user_id);
    assert.equal(payload.email, a.user.email);
    assert.equal(payload.nonce, tokens.nonce);
    const digest = createHash('sha256').update(tokens.access_token).digest();
    assert.equal(payload.at_hash, digest.subarray(0, 16).toString('base64url'));

    const at = await jose.jwtVerify(tokens.access_token, jwksA, {
      issuer: a.issuer, audience: a.audience, typ: 'at+jwt', algorithms: ['RS256'],
    });
    assert.equal(at.payload.sub, a.user.user_id);
    assert.deepEqual([at.payload.aud].flat(), [a.audience, `${a.issuer}userinfo`]);

    // Neither token passes for the other: typ at+jwt (RFC 9068) keeps ID tokens out of APIs.
    await assertRefused(jose.jwtVerify(tokens.id_token, jwksA, { issuer: a.issuer, typ: 'at+jwt' }),
      jose.errors.JWTClaimValidationFailed, (e) => assert.equal(e.claim, 'typ'));
    await assertRefused(jose.jwtVerify(tokens.access_token, jwksA,
      { issuer: a.issuer, audience: a.client.client_id }),
    jose.errors.JWTClaimValidationFailed, (e) => assert.equal(e.claim, 'aud'));
  });

  it('refuses tampered tokens', async () => {
    const token = await clientCredentialsToken(a);
    const opts = { issuer: a.issuer, audience: a.audience, algorithms: ['RS256'] };
    await jose.jwtVerify(token, jwksA, opts);

    // A changed claim under the original signature.
    const escalated = forge(token, { payload: (p) => ({ ...p, scope: 'read:things admin:all' }) });
    await assertRefused(jose.jwtVerify(escalated, jwksA, opts),
      jose.errors.JWSSignatureVerificationFailed);
    // One character of the signature changed.
    const [h, p, s] = token.split('.');
    const i = Math.floor(s.length / 2);
    const flipped = `${h}.${p}.${s.slice(0, i)}${s[i] === 'A' ? 'B' : 'A'}${s.slice(i + 1)}`;
    await assertRefused(jose.jwtVerify(flipped, jwksA, opts),
      jose.errors.JWSSignatureVerificationFailed);
    // The tenant's other published key (the next one) named in the header.
    const header = jose.decodeProtectedHeader(token);
    const other = jwksA.jwks().keys.find((k) => k.kid !== header.kid);
    assert.ok(other, 'the JWKS also publishes the next key');
    await assertRefused(jose.jwtVerify(forge(token, { header: (x) => ({ ...x, kid: other.kid }) }),
      jwksA, opts), jose.errors.JWSSignatureVerificationFailed);
    // alg "none" with the signature stripped.
    const unsigned = forge(token, { header: (x) => ({ ...x, alg: 'none' }) }).split('.');
    const none = `${unsigned[0]}.${unsigned[1]}.`;
    await assertRefused(jose.jwtVerify(none, jwksA, opts), jose.errors.JOSEAlgNotAllowed);
  });

  it('does not verify one tenant\'s token against another tenant\'s JWKS', async () => {
    const tokenA = await clientCredentialsToken(a);
    const jwksCp = jose.createRemoteJWKSet(new URL(cp.md.jwks_uri));
    const jwksEs = jose.createRemoteJWKSet(new URL(es.md.jwks_uri));
    await assertRefused(jose.jwtVerify(tokenA, jwksCp), jose.errors.JWKSNoMatchingKey);
    await assertRefused(jose.jwtVerify(tokenA, jwksEs), jose.errors.JWKSNoMatchingKey);

    // Relabelled with the control plane's current kid, the signature does not match its key.
    const cpKid = jose.decodeProtectedHeader(await clientCredentialsToken(cp)).kid;
    assert.notEqual(cpKid, jose.decodeProtectedHeader(tokenA).kid);
    const relabelled = forge(tokenA, { header: (x) => ({ ...x, kid: cpKid }) });
    await assertRefused(jose.jwtVerify(relabelled, jwksCp),
      jose.errors.JWSSignatureVerificationFailed);
    // And the control plane's token, verified with its own keys, still has the wrong issuer for A.
    await assertRefused(jose.jwtVerify(await clientCredentialsToken(cp), jwksCp,
      { issuer: a.issuer }),
    jose.errors.JWTClaimValidationFailed, (e) => assert.equal(e.claim, 'iss'));
  });

  it('verifies ES256 tokens of a tenant that chose ES256', async () => {
    assert.ok(es.md.id_token_signing_alg_values_supported.includes('ES256'));
    const jwksEs = jose.createRemoteJWKSet(new URL(es.md.jwks_uri));
    const token = await clientCredentialsToken(es);
    const { protectedHeader, payload } = await jose.jwtVerify(token, jwksEs, {
      issuer: es.issuer, audience: es.audience, typ: 'at+jwt', algorithms: ['ES256'],
    });
    assert.equal(protectedHeader.alg, 'ES256');
    assert.equal(payload.tenant_id, es.tenant);
    const key = jwksEs.jwks().keys.find((k) => k.kid === protectedHeader.kid);
    assert.equal(key.kty, 'EC');
    assert.equal(key.crv, 'P-256');
    await assertRefused(jose.jwtVerify(token, jwksEs, { algorithms: ['RS256'] }),
      jose.errors.JOSEAlgNotAllowed);

    const tokens = await login(es);
    const id = await jose.jwtVerify(tokens.id_token, jwksEs,
      { issuer: es.issuer, audience: es.client.client_id, algorithms: ['ES256'] });
    assert.equal(id.protectedHeader.alg, 'ES256');
    assert.equal(id.payload.sub, es.user.user_id);
    assert.equal(id.payload.nonce, tokens.nonce);
  });

  it('keeps verifying across key rotation and refetches the JWKS for an unknown kid', async () => {
    const t = await setUpTenant();
    const opts = { issuer: t.issuer, audience: t.audience, typ: 'at+jwt' };
    // No cooldown, so that an unknown kid makes jose refetch at once (default: 30 s).
    const { jwks, counter } = countingJWKS(t.md.jwks_uri, { cooldownDuration: 0 });
    const rotate = () => server.api('POST', '/keys/signing/rotate', { tenant: t.tenant });
    const kidOf = (token) => jose.decodeProtectedHeader(token).kid;

    const t1 = await clientCredentialsToken(t);
    const k1 = kidOf(t1);
    await jose.jwtVerify(t1, jwks, opts);
    assert.equal(counter.fetches, 1);
    const published1 = jwks.jwks().keys.map((k) => k.kid);
    assert.equal(published1.length, 2, 'the current key and the next one');
    assert.ok(published1.includes(k1));

    // First rotation: the published next key becomes current.
    const r1 = await rotate();
    const t2 = await clientCredentialsToken(t);
    const k2 = kidOf(t2);
    assert.equal(r1.kid, k2);
    assert.notEqual(k2, k1);
    assert.ok(published1.includes(k2), 'the new current key was already published as next');
    await jose.jwtVerify(t2, jwks, opts);
    assert.equal(counter.fetches, 1, 'no refetch: the key was known');
    await jose.jwtVerify(t1, jwks, opts);

    // Second rotation: the new current key was created by the first one, unknown to the cache.
    const r2 = await rotate();
    const t3 = await clientCredentialsToken(t);
    const k3 = kidOf(t3);
    assert.equal(r2.kid, k3);
    assert.ok(!published1.includes(k3));
    await jose.jwtVerify(t3, jwks, opts);
    assert.equal(counter.fetches, 2, 'refetched for the unknown kid');

    // The old tokens still verify against a fresh fetch: previous keys stay published.
    const fresh = jose.createRemoteJWKSet(new URL(t.md.jwks_uri));
    for (const token of [t1, t2, t3]) await jose.jwtVerify(token, fresh, opts);
    const keys = await server.api('GET', '/keys/signing', { tenant: t.tenant });
    const status = (kid) => keys.find((k) => k.kid === kid);
    assert.equal(status(k1).previous, true);
    assert.equal(status(k2).previous, true);
    assert.equal(status(k3).current, true);

    // Revoking a previous key unpublishes it: its tokens stop verifying, the others do not.
    await server.api('PUT', `/keys/signing/${k1}/revoke`, { tenant: t.tenant, expect: 200 });
    const afterRevoke = jose.createRemoteJWKSet(new URL(t.md.jwks_uri));
    await assertRefused(jose.jwtVerify(t1, afterRevoke, opts), jose.errors.JWKSNoMatchingKey);
    await jose.jwtVerify(t2, afterRevoke, opts);
    await jose.jwtVerify(t3, afterRevoke, opts);
  });
});
