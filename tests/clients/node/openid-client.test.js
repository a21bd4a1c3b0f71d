// openid-client (the certified OpenID Connect relying party for Node) against a real keystead:
// discovery, authorization code + PKCE through the hosted login form, refresh-token rotation,
// userinfo and client_credentials — on the control plane and on a path-routed child tenant.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';

import { Server, CookieJar, loginThroughForm, jwtClaims, uniqueId } from './keystead.js';

const REDIRECT_URI = 'https://rp.clients.test/callback';

let server;

before(async () => {
  server = await Server.start();
});

after(async () => {
  await server?.stop();
});

/** A regular web app, an API it may call with client_credentials, and a user, in one tenant. */
async function setUpTenant(tenant) {
  const audience = `https://${uniqueId('api')}.clients.test/`;
  await server.api('POST', '/resource-servers', {
    tenant,
    json: {
      name: 'Clients API', identifier: audience, allow_offline_access: true,
      scopes: [{ value: 'read:things', description: 'Read things' }],
    },
  });
  const client = await server.api('POST', '/clients', {
    tenant,
    json: {
      name: 'openid-client RP', app_type: 'regular_web', callbacks: [REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
      token_endpoint_auth_method: 'client_secret_post',
    },
  });
  assert.match(client.client_id, /^[A-Za-z0-9]{32}$/);
  assert.equal(typeof client.client_secret, 'string');
  await server.api('POST', '/client-grants', {
    tenant, json: { client_id: client.client_id, audience, scope: ['read:things'] },
  });
  const user = await server.createUser(tenant);
  return { audience, client, user };
}

/** Discovery through openid-client (plain http on loopback needs allowInsecureRequests). */
function discover(tenant, client) {
  return oidc.discovery(new URL(server.issuer(tenant)), client.client_id, client.client_secret,
    undefined, { execute: [oidc.allowInsecureRequests] });
}

/** The whole code flow: authorization URL, hosted login form, callback, code exchange. */
async function codeFlow(config, user, { scope = 'openid profile email offline_access', jar } = {}) {
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI, scope, state, nonce,
    code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
  });
  const callback = await loginThroughForm(url,
    { email: user.email, redirectUri: REDIRECT_URI, jar });
  const tokens = await oidc.authorizationCodeGrant(config, new URL(callback), {
    pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce,
    idTokenExpected: true,
  });
  return { tokens, callback, codeVerifier };
}

async function assertGrantRefused(promise, what) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof oidc.ResponseBodyError, `${what}: ${err}`);
    assert.equal(err.error, 'invalid_grant', `${what}: ${err.error} ${err.error_description}`);
    assert.equal(err.status, 400, what);
    return true;
  }, what);
}

for (const where of ['control plane', 'child tenant']) {
  describe(`openid-client on the ${where}`, () => {
    let tenant;
    let app;
    let config;

    before(async () => {
      tenant = where === 'child tenant' ? await server.createTenant() : undefined;
      app = await setUpTenant(tenant);
      config = await discover(tenant, app.client);
    });

    it('discovers the issuer and its endpoints', async () => {
      const md = config.serverMetadata();
      const issuer = server.issuer(tenant);
      assert.equal(md.issuer, issuer);
      for (const [key, path] of [['authorization_endpoint', 'authorize'],
        ['token_endpoint', 'oauth/token'], ['userinfo_endpoint', 'userinfo'],
        ['jwks_uri', '.well-known/jwks.json']]) {
        assert.equal(md[key], issuer + path, key);
      }
      assert.ok(md.code_challenge_methods_supported.includes('S256'));
      assert.ok(md.grant_types_supported.includes('refresh_token'));
      assert.ok(md.supportsPKCE());
      const jwks = await (await fetch(md.jwks_uri)).json();
      assert.ok(jwks.keys.length >= 1 && jwks.keys.every((k) => k.kid && !k.d));
    });

    it('runs the authorization code flow with PKCE through the hosted login form', async () => {
      const jar = new CookieJar();
      const { tokens, callback } = await codeFlow(config, app.user, { jar });
      assert.equal(new URL(callback).searchParams.get('iss') ?? server.issuer(tenant),
        server.issuer(tenant));
      assert.equal(tokens.token_type.toLowerCase(), 'bearer');
      assert.ok(tokens.expiresIn() > 0);
      // openid-client has validated the ID token (signature via JWKS, iss, aud, nonce, exp).
      const id = tokens.claims();
      assert.equal(id.iss, server.issuer(tenant));
      assert.equal(id.aud, app.client.client_id);
      assert.equal(id.sub, app.user.user_id);
      assert.equal(id.email, app.user.email);
      const at = jwtClaims(tokens.access_token);
      assert.equal(at.iss, server.issuer(tenant));
      assert.equal(at.sub, app.user.user_id);
      assert.equal(at.azp, app.client.client_id);
      assert.equal(at.tenant_id, tenant ?? 'control_plane');
      assert.ok(jar.size > 0, 'the login set a session cookie');

      // The session cookie makes a second authorization answer at once, without the form.
      const again = await codeFlow(config, app.user, { jar });
      assert.equal(again.tokens.claims().sub, app.user.user_id);
    });

    it('refuses a code exchanged with the wrong PKCE verifier, and a code used twice', async () => {
      const codeVerifier = oidc.randomPKCECodeVerifier();
      const state = oidc.randomState();
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: REDIRECT_URI, scope: 'openid', state,
        code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
        code_challenge_method: 'S256',
      });
      const callback = await loginThroughForm(url,
        { email: app.user.email, redirectUri: REDIRECT_URI });
      await assertGrantRefused(oidc.authorizationCodeGrant(config, new URL(callback), {
        pkceCodeVerifier: oidc.randomPKCECodeVerifier(), expectedState: state,
      }), 'wrong code_verifier');

      const { callback: cb2, codeVerifier: v2 } =
        await codeFlow(config, app.user, { scope: 'openid' });
      const state2 = new URL(cb2).searchParams.get('state');
      await assertGrantRefused(oidc.authorizationCodeGrant(config, new URL(cb2), {
        pkceCodeVerifier: v2, expectedState: state2,
      }), 'code used twice');
    });

    it('rotates refresh tokens and refuses a used one', async () => {
      const { tokens } = await codeFlow(config, app.user);
      const rt1 = tokens.refresh_token;
      assert.equal(typeof rt1, 'string', 'offline_access gave a refresh token');

      const second = await oidc.refreshTokenGrant(config, rt1);
      const rt2 = second.refresh_token;
      assert.equal(typeof rt2, 'string');
      assert.notEqual(rt2, rt1, 'the refresh token rotated');
      assert.notEqual(second.access_token, tokens.access_token);
      assert.equal(second.claims()?.sub ?? jwtClaims(second.access_token).sub, app.user.user_id);

      const third = await oidc.refreshTokenGrant(config, rt2);
      assert.notEqual(third.refresh_token, rt2);

      // Reusing a rotated token is refused, and revokes the whole family, the newest too.
      await assertGrantRefused(oidc.refreshTokenGrant(config, rt1), 'reused refresh token');
      await assertGrantRefused(oidc.refreshTokenGrant(config, third.refresh_token),
        'newest refresh token after reuse');
    });

    it('fetches userinfo with the access token', async () => {
      const { tokens } = await codeFlow(config, app.user);
      const info = await oidc.fetchUserInfo(config, tokens.access_token, app.user.user_id);
      assert.equal(info.sub, app.user.user_id);
      assert.equal(info.email, app.user.email);
      // openid-client checks that userinfo's sub is the expected one.
      await assert.rejects(oidc.fetchUserInfo(config, tokens.access_token, 'auth0|someone-else'));
      await assert.rejects(oidc.fetchUserInfo(config, 'not-a-token', oidc.skipSubjectCheck),
        (err) => err instanceof oidc.WWWAuthenticateChallengeError || err.status === 401);
    });

    it('gets an access token with client_credentials', async () => {
      const tokens = await oidc.clientCredentialsGrant(config, { audience: app.audience });
      assert.equal(tokens.token_type.toLowerCase(), 'bearer');
      assert.equal(tokens.refresh_token, undefined);
      const at = jwtClaims(tokens.access_token);
      assert.equal(at.iss, server.issuer(tenant));
      assert.deepEqual([at.aud].flat(), [app.audience]);
      assert.equal(at.azp, app.client.client_id);
      assert.equal(at.sub, `${app.client.client_id}@clients`);
      assert.equal(at.scope, 'read:things');
      assert.equal(at.tenant_id, tenant ?? 'control_plane');

      // An audience the client has no grant for is access_denied (403).
      await assert.rejects(
        oidc.clientCredentialsGrant(config, { audience: 'https://nowhere.clients.test/' }),
        (err) => err instanceof oidc.ResponseBodyError && err.error === 'access_denied' &&
          err.status === 403);
    });
  });
}
