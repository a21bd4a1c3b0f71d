// auth0-spa-js in headless Chromium (Debian's chromium, driven by playwright-core) against a real
// keystead control plane: a small portal served on 127.0.0.1 logs in with loginWithRedirect
// through the hosted login page, handles the callback, then switches organizations silently
// (prompt=none + response_mode=web_message in a hidden iframe, code exchange over CORS) with one
// Auth0Client per organization, each token carrying that organization's org_id.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

import { Server, PASSWORD, jwtClaims, uniqueId } from './keystead.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SPA_JS = path.join(HERE, '..', 'node_modules', '@auth0', 'auth0-spa-js', 'dist',
  'auth0-spa-js.production.js');
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
  '--no-first-run', '--disable-background-networking', '--disable-component-update',
  '--disable-sync'];
const STEP_TIMEOUT_MS = 30_000;

let server;
let portal;        // { server, origin }
let context;       // the Chromium browser context (fresh --user-data-dir)
let profileDir;
let page;
const traffic = []; // what the browser sent to keystead and got back, for failure messages
let setup;          // { client, audience, user, orgA, orgB, orgC }

/** Serves the portal page, its script, its configuration and the auth0-spa-js UMD bundle. */
function startPortal(config) {
  const files = {
    '/': ['text/html', readFileSync(path.join(HERE, 'portal', 'index.html'))],
    '/portal.js': ['text/javascript', readFileSync(path.join(HERE, 'portal', 'portal.js'))],
    '/auth0-spa-js.production.js': ['text/javascript', readFileSync(SPA_JS)],
  };
  files['/callback'] = files['/'];
  const srv = http.createServer((req, res) => {
    const { pathname } = new URL(req.url, 'http://127.0.0.1');
    let file = files[pathname];
    if (pathname === '/config.js') {
      file = ['text/javascript', `window.PORTAL_CONFIG = ${JSON.stringify(config())};`];
    }
    if (!file) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': `${file[0]}; charset=utf-8`, 'cache-control': 'no-store' })
      .end(file[1]);
  });
  return new Promise((resolve) => {
    srv.listen(0, '127.0.0.1', () => {
      resolve({ server: srv, origin: `http://127.0.0.1:${srv.address().port}` });
    });
  });
}

function trafficLog() {
  return traffic.slice(-40).join('\n');
}

before(async () => {
  server = await Server.start();
  portal = await startPortal(() => ({
    // auth0-spa-js prefixes https:// only to a domain without a scheme; the server is plain http
    // on loopback, so the domain carries its scheme and the token issuer becomes
    // http://127.0.0.1:PORT/ (the control plane's issuer).
    domain: server.base,
    clientId: setup.client.client_id,
    audience: setup.audience,
  }));

  // Control plane: an API, the portal's SPA client, two organizations with the user in both and
  // one without.
  const audience = `https://${uniqueId('portal-api')}.clients.test/`;
  await server.api('POST', '/resource-servers', {
    json: {
      name: 'Portal API', identifier: audience, allow_offline_access: true,
      scopes: [{ value: 'read:tenants', description: 'Read tenants' }],
    },
  });
  const client = await server.api('POST', '/clients', {
    json: {
      name: 'Portal SPA', app_type: 'spa', callbacks: [`${portal.origin}/callback`],
      web_origins: [portal.origin], allowed_origins: [portal.origin],
      allowed_logout_urls: [`${portal.origin}/`],
      grant_types: ['authorization_code', 'refresh_token'],
    },
  });
  assert.equal(client.token_endpoint_auth_method, 'none', 'spa clients are public');
  const user = await server.createUser(undefined);
  const org = async (label) => server.api('POST', '/organizations', {
    json: { name: uniqueId(label), display_name: `Org ${label}` },
  });
  const orgA = await org('org-a');
  const orgB = await org('org-b');
  const orgC = await org('org-c');
  for (const o of [orgA, orgB]) {
    await server.api('POST', `/organizations/${o.id}/members`, {
      json: { members: [user.user_id] }, expect: 204,
    });
  }
  setup = { client, audience, user, orgA, orgB, orgC };

  profileDir = mkdtempSync(path.join(tmpdir(), 'keystead-chromium-'));
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: STEP_TIMEOUT_MS,
  });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  context.on('response', (r) => {
    if (!r.url().startsWith(server.base)) return;
    const req = r.request();
    const h = r.headers();
    traffic.push(`${req.method()} ${r.url()} -> ${r.status()} ` +
      `origin=${req.headers().origin ?? '-'} acao=${h['access-control-allow-origin'] ?? '-'} ` +
      `location=${h.location ?? '-'}`);
  });
  context.on('requestfailed', (req) => {
    traffic.push(`FAILED ${req.method()} ${req.url()}: ${req.failure()?.errorText}`);
  });
  page = context.pages()[0] ?? await context.newPage();
  page.on('console', (m) => traffic.push(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => traffic.push(`pageerror: ${e.message}`));
});

after(async () => {
  await context?.close();
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
  portal?.server.close();
  await server?.stop();
});

describe('auth0-spa-js in Chromium on the control plane', () => {
  it('logs in with loginWithRedirect through the hosted login page', async () => {
    await page.goto(`${portal.origin}/`);
    await page.waitForFunction(() => window.portal && window.portal.ready);
    await page.click('#login');
    await page.waitForURL((u) => u.href.startsWith(`${server.base}/u/login`));
    await page.fill('#username', setup.user.email);
    await page.fill('#password', PASSWORD);
    await page.click('button[type="submit"]');
    await page.waitForURL((u) => u.href.startsWith(`${portal.origin}/`));
    await page.waitForFunction(() => window.portal && window.portal.ready);
    const login = await page.evaluate(() => window.portal.login);
    assert.ok(login?.ok, `login failed: ${JSON.stringify(login)}\n${trafficLog()}`);
    assert.deepEqual(login.appState, { returnTo: '/' });
    assert.ok(login.authenticated);
    assert.equal(login.user.sub, setup.user.user_id);
    assert.equal(login.user.email, setup.user.email);

    const at = jwtClaims(login.token.access_token);
    assert.equal(at.iss, server.issuer());
    assert.equal(at.sub, setup.user.user_id);
    assert.ok([at.aud].flat().includes(setup.audience), `aud ${JSON.stringify(at.aud)}`);
    assert.equal(at.azp, setup.client.client_id);
    assert.equal(at.org_id, undefined, 'no organization was requested');
    const idt = jwtClaims(login.token.id_token);
    assert.equal(idt.iss, server.issuer());
    assert.equal(idt.aud, setup.client.client_id);
  });

  it('refreshes the portal token with its rotating refresh token over CORS', async () => {
    const refresh = () => page.evaluate(async () => {
      try {
        const t = await window.portal.main.getTokenSilently({
          cacheMode: 'off', detailedResponse: true,
        });
        return { ok: true, access_token: t.access_token };
      } catch (e) {
        return { ok: false, error: String(e.error || e.message), description: e.error_description };
      }
    });
    const login = await page.evaluate(() => window.portal.login.token.access_token);
    const mark = traffic.length;
    const first = await refresh();
    assert.ok(first.ok, `${JSON.stringify(first)}\n${trafficLog()}`);
    // A second refresh works too: auth0-spa-js kept the rotated refresh token.
    const second = await refresh();
    assert.ok(second.ok, `${JSON.stringify(second)}\n${trafficLog()}`);
    assert.equal(new Set([login, first.access_token, second.access_token]).size, 3);
    assert.equal(jwtClaims(second.access_token).sub, setup.user.user_id);
    const calls = traffic.slice(mark);
    assert.equal(calls.filter((l) => l.includes('/authorize?')).length, 0, calls.join('\n'));
    assert.ok(calls.filter((l) => l.startsWith('POST ') && l.includes('/oauth/token ') &&
      l.includes(`acao=${portal.origin}`)).length >= 2, calls.join('\n'));
  });

  it('switches organizations silently, one client and cache per organization', async () => {
    const tokens = {};
    for (const org of [setup.orgA, setup.orgB]) {
      const r = await page.evaluate((o) => window.portal.orgToken(o), org.id);
      assert.ok(r.ok, `silent token for ${org.id} failed: ${JSON.stringify(r)}\n${trafficLog()}`);
      const at = jwtClaims(r.access_token);
      assert.equal(at.org_id, org.id);
      assert.equal(at.org_name, org.name);
      assert.equal(at.sub, setup.user.user_id);
      assert.ok([at.aud].flat().includes(setup.audience));
      // auth0-spa-js checked the ID token's org_id against the organization it asked for.
      assert.equal(r.claims.org_id, org.id);
      // This organization's cache holds its user and one token, for the API.
      const tokenKeys = r.cacheKeys.filter((k) => !k.endsWith('::@@user@@'));
      assert.deepEqual(tokenKeys,
        [`@@auth0spajs@@::${setup.client.client_id}::${setup.audience}::openid profile email`],
        JSON.stringify(r.cacheKeys));
      tokens[org.id] = r.access_token;
    }
    assert.notEqual(tokens[setup.orgA.id], tokens[setup.orgB.id]);
    // The silent logins went through /authorize with prompt=none and web_message, and the code
    // exchange through CORS from the portal's origin.
    const authorizeHits = traffic.filter((l) => l.includes('/authorize?') &&
      l.includes('prompt=none') && l.includes('response_mode=web_message'));
    assert.ok(authorizeHits.length >= 2, trafficLog());
    const tokenHits = traffic.filter((l) => l.startsWith('POST ') && l.includes('/oauth/token ') &&
      l.includes(`acao=${portal.origin}`));
    assert.ok(tokenHits.length >= 2, trafficLog());

    // Each client answers again from its own cache: same token, no new authorization.
    const before = traffic.length;
    for (const org of [setup.orgA, setup.orgB]) {
      const r = await page.evaluate((o) => window.portal.orgToken(o), org.id);
      assert.ok(r.ok, JSON.stringify(r));
      assert.equal(r.access_token, tokens[org.id]);
    }
    assert.equal(traffic.slice(before).filter((l) => l.includes('/authorize?')).length, 0,
      trafficLog());
  });

  it('is refused silently for an organization the user is not a member of', async () => {
    const r = await page.evaluate((o) => window.portal.orgToken(o), setup.orgC.id);
    assert.equal(r.ok, false, JSON.stringify(r));
    assert.equal(r.error, 'access_denied', `${JSON.stringify(r)}\n${trafficLog()}`);
  });
});
