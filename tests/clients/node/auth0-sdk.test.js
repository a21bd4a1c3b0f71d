// The official Auth0 Node SDK (npm `auth0` 7, the Fern-generated ManagementClient), unmodified,
// against a real keystead: it fetches its own Management API token with client credentials and
// manages users, roles, resource servers, clients, client grants, organizations, connections,
// logs and signing keys; errors come back as its typed errors with Auth0's body; and further
// clients manage a path-routed child tenant with the control-plane token (platform staff), and a
// child tenant with the child's own client through keystead's tenant-id header.
//
// The SDK builds every URL as https://{domain}/...; keystead serves plain http on loopback, so the
// SDK's documented `fetch` option gets a shim that changes the scheme of https://127.0.0.1:PORT/
// to http:// and nothing else (method, path, query, headers and body pass through untouched).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ManagementClient, ManagementError, Management, createManagementAuth } from 'auth0';

import {
  Server, BOOTSTRAP_CLIENT_ID, BOOTSTRAP_CLIENT_SECRET, MGMT_AUDIENCE, DEFAULT_CONNECTION,
  PASSWORD, jwtClaims, uniqueId,
} from './keystead.js';

let server;
let domain;          // 127.0.0.1:PORT, what the SDK calls the tenant's domain
let mgmt;            // ManagementClient of the control plane (client credentials)
const traffic = [];  // what the SDK sent and got back, for failure messages

/** The SDK's `fetch`: https://127.0.0.1:PORT/... -> http://127.0.0.1:PORT/..., nothing else. */
async function loopbackFetch(input, init) {
  const url = String(input);
  if (!url.startsWith(`https://${domain}/`)) throw new Error(`the SDK left the test server: ${url}`);
  const plain = `http://${url.slice('https://'.length)}`;
  const r = await fetch(plain, init);
  traffic.push(`${init?.method ?? 'GET'} ${plain} -> ${r.status}`);
  return r;
}

function trafficLog() {
  return traffic.slice(-30).join('\n');
}

/** Client-credentials options (the SDK's TokenProvider posts to https://{domain}/oauth/token). */
function credentials(extra = {}) {
  return {
    domain, clientId: BOOTSTRAP_CLIENT_ID, clientSecret: BOOTSTRAP_CLIENT_SECRET,
    audience: MGMT_AUDIENCE, fetch: loopbackFetch, maxRetries: 0, ...extra,
  };
}

/** Asserts that `promise` rejects with the SDK's typed error and Auth0's error body. */
async function assertApiError(promise, { type, status, errorCode, message }) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof type, `expected ${type.name}, got ${err?.name}: ${err?.message}`);
    assert.ok(err instanceof ManagementError);
    assert.equal(err.statusCode, status);
    assert.equal(err.body.statusCode, status);
    assert.equal(typeof err.body.error, 'string');
    if (errorCode) assert.equal(err.body.errorCode, errorCode);
    else assert.equal(typeof err.body.errorCode, 'string');
    if (message) assert.match(err.body.message, message);
    else assert.equal(typeof err.body.message, 'string');
    assert.equal(err.rawResponse.status, status);
    return true;
  });
}

async function collect(pagePromise) {
  const all = [];
  for await (const item of await pagePromise) all.push(item);
  return all;
}

/**
 * Creates a child tenant through the SDK's passthrough `fetch` (same token, same base URL): the
 * SDK has no resource for keystead's POST /api/v2/tenants.
 */
async function createTenant() {
  const id = uniqueId('sdk');
  const r = await mgmt.fetch('/tenants', {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id, friendly_name: `SDK ${id}` }),
  });
  const text = await r.text();
  assert.equal(r.status, 201, text);
  assert.equal(JSON.parse(text).id, id);
  return id;
}

function newUser(extra = {}) {
  return {
    connection: DEFAULT_CONNECTION, email: `${uniqueId('sdk')}@example.com`, password: PASSWORD,
    ...extra,
  };
}

before(async () => {
  server = await Server.start();
  domain = `127.0.0.1:${server.httpPort}`;
  mgmt = new ManagementClient(credentials());
});

after(async () => {
  await server?.stop();
});

describe('auth0 ManagementClient', () => {
  it('gets its own Management API token with client credentials and reuses it', async () => {
    const before = traffic.length;
    const settings = await mgmt.tenants.settings.get();
    assert.equal(typeof settings, 'object');
    await mgmt.connections.list();
    const sent = traffic.slice(before);
    assert.equal(sent.filter((t) => t.startsWith(`POST ${server.base}/oauth/token `)).length, 1,
      sent.join('\n'));
    assert.ok(sent.some((t) => t.startsWith(`GET ${server.base}/api/v2/tenants/settings -> 200`)),
      sent.join('\n'));

    const auth = createManagementAuth(credentials());
    assert.equal(auth.baseUrl, `https://${domain}/api/v2`);
    const claims = jwtClaims(await auth.getToken());
    assert.equal(claims.iss, server.issuer());
    assert.deepEqual([claims.aud].flat(), [MGMT_AUDIENCE]);
    assert.equal(claims.azp, BOOTSTRAP_CLIENT_ID);
    assert.ok(claims.scope.split(' ').includes('create:users'));

    // A wrong secret is the SDK's ManagementError with the OAuth error body.
    const bad = new ManagementClient(credentials({ clientSecret: 'wrong-secret' }));
    await assert.rejects(bad.users.list(), (err) => {
      assert.ok(err instanceof ManagementError, String(err));
      assert.equal(err.statusCode, 401);
      assert.equal(err.body.error, 'invalid_client');
      return true;
    });
  });

  it('creates, gets, updates, finds by email and deletes users', async () => {
    const req = newUser({ name: 'Ann Example', user_metadata: { plan: 'free' } });
    const created = await mgmt.users.create(req);
    assert.match(created.user_id, /^auth0\|[0-9a-f]{24}$/);
    assert.equal(created.email, req.email);
    assert.equal(created.name, 'Ann Example');
    assert.equal(created.password, undefined);
    assert.deepEqual(created.user_metadata, { plan: 'free' });
    assert.ok(created.identities.some((i) => i.connection === DEFAULT_CONNECTION &&
      i.provider === 'auth0'), JSON.stringify(created.identities));

    const got = await mgmt.users.get(created.user_id);
    assert.equal(got.user_id, created.user_id);
    assert.equal(got.email, req.email);

    const updated = await mgmt.users.update(created.user_id,
      { name: 'Ann Updated', user_metadata: { plan: 'pro' }, app_metadata: { tier: 2 } });
    assert.equal(updated.name, 'Ann Updated');
    assert.equal(updated.user_metadata.plan, 'pro');
    assert.equal(updated.app_metadata.tier, 2);
    assert.equal((await mgmt.users.get(created.user_id)).name, 'Ann Updated');

    const byEmail = await mgmt.users.listUsersByEmail({ email: req.email });
    assert.deepEqual(byEmail.map((u) => u.user_id), [created.user_id]);
    assert.deepEqual(await mgmt.users.listUsersByEmail({ email: `nobody-${req.email}` }), []);

    // Search (v3): one exact clause is answered; anything more is a 400, never ignored.
    const found = await collect(mgmt.users.list({ q: `email:"${req.email}"`, search_engine: 'v3' }));
    assert.deepEqual(found.map((u) => u.user_id), [created.user_id]);
    assert.deepEqual(
      await collect(mgmt.users.list({ q: 'email:"nobody@example.com"', search_engine: 'v3' })), []);
    await assertApiError(collect(mgmt.users.list({ q: 'email:*@clients.test', search_engine: 'v3' })),
      { type: Management.BadRequestError, status: 400, errorCode: 'invalid_query_string' });

    await mgmt.users.delete(created.user_id);
    await assertApiError(mgmt.users.get(created.user_id),
      { type: Management.NotFoundError, status: 404, errorCode: 'inexistent_user' });
  });

  it('lists users page by page with totals', async () => {
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await mgmt.users.create(newUser())).user_id);

    const first = await mgmt.users.list({ per_page: 2, include_totals: true });
    assert.equal(first.data.length, 2);
    assert.equal(first.response.start, 0);
    assert.equal(first.response.limit, 2);
    assert.equal(first.response.length, 2);
    assert.ok(first.response.total >= 5, JSON.stringify(first.response));
    assert.ok(first.hasNextPage());
    const firstIds = first.data.map((u) => u.user_id);
    await first.getNextPage(); // the Page moves on in place
    assert.equal(first.response.start, 2);
    assert.equal(first.data.length, 2);
    assert.ok(first.data.every((u) => !firstIds.includes(u.user_id)), 'page 1 differs from page 0');

    // The SDK's async iterator walks every page (page=0,1,2,...) until a short one.
    const all = await collect(mgmt.users.list({ per_page: 2 }));
    const seen = new Set(all.map((u) => u.user_id));
    assert.equal(seen.size, all.length, 'no user twice');
    assert.equal(all.length, first.response.total);
    for (const id of ids) assert.ok(seen.has(id), id);
  });

  it('creates an API with scopes, a role with its permissions, and assigns it', async () => {
    const identifier = `https://${uniqueId('sdk-api')}.clients.test/`;
    const api = await mgmt.resourceServers.create({
      name: 'SDK API', identifier,
      scopes: [{ value: 'read:things', description: 'Read things' },
        { value: 'write:things', description: 'Write things' }],
    });
    assert.match(api.id, /^api_/);
    assert.equal(api.identifier, identifier);
    assert.deepEqual(api.scopes.map((s) => s.value).sort(), ['read:things', 'write:things']);
    assert.equal((await mgmt.resourceServers.get(api.id)).identifier, identifier);
    const picked = await collect(mgmt.resourceServers.list({ identifiers: [identifier] }));
    assert.deepEqual(picked.map((a) => a.id), [api.id]);
    const apis = await collect(mgmt.resourceServers.list());
    assert.ok(apis.some((a) => a.id === api.id));

    const role = await mgmt.roles.create({ name: uniqueId('sdk-role'), description: 'Readers' });
    assert.match(role.id, /^rol_/);
    assert.equal((await mgmt.roles.get(role.id)).description, 'Readers');
    await mgmt.roles.permissions.add(role.id, {
      permissions: [{ resource_server_identifier: identifier, permission_name: 'read:things' }],
    });
    const perms = await collect(mgmt.roles.permissions.list(role.id));
    assert.deepEqual(perms.map((p) => [p.resource_server_identifier, p.permission_name]),
      [[identifier, 'read:things']]);

    const user = await mgmt.users.create(newUser());
    await mgmt.users.roles.assign(user.user_id, { roles: [role.id] });
    const userRoles = await collect(mgmt.users.roles.list(user.user_id));
    assert.deepEqual(userRoles.map((r) => r.id), [role.id]);
    assert.equal(userRoles[0].name, role.name);
    const roleUsers = await collect(mgmt.roles.users.list(role.id));
    assert.deepEqual(roleUsers.map((u) => u.user_id), [user.user_id]);

    await mgmt.users.roles.delete(user.user_id, { roles: [role.id] });
    assert.deepEqual(await collect(mgmt.users.roles.list(user.user_id)), []);
  });

  it('creates and reads a client, rotates its secret, and grants it an API', async () => {
    const identifier = `https://${uniqueId('sdk-m2m')}.clients.test/`;
    await mgmt.resourceServers.create({
      name: 'SDK M2M API', identifier, scopes: [{ value: 'read:stock' }, { value: 'write:stock' }],
    });
    const client = await mgmt.clients.create({
      name: 'SDK backend', app_type: 'non_interactive', grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'client_secret_post',
    });
    assert.match(client.client_id, /^[A-Za-z0-9]{32}$/);
    assert.match(client.client_secret, /^[A-Za-z0-9]{64}$/);
    const got = await mgmt.clients.get(client.client_id);
    assert.equal(got.name, 'SDK backend');
    assert.equal(got.app_type, 'non_interactive');
    const updated = await mgmt.clients.update(client.client_id, { description: 'Stock sync' });
    assert.equal(updated.description, 'Stock sync');

    const grant = await mgmt.clientGrants.create(
      { client_id: client.client_id, audience: identifier, scope: ['read:stock'] });
    assert.match(grant.id, /^cgr_/);
    assert.deepEqual(grant.scope, ['read:stock']);
    assert.deepEqual((await mgmt.clientGrants.get(grant.id)).scope, ['read:stock']);
    const changed = await mgmt.clientGrants.update(grant.id,
      { scope: ['read:stock', 'write:stock'] });
    assert.deepEqual([...changed.scope].sort(), ['read:stock', 'write:stock']);
    const grants = await collect(mgmt.clientGrants.list({ client_id: client.client_id }));
    assert.deepEqual(grants.map((g) => g.id), [grant.id]);

    // The SDK's own client-credentials token provider works for any API the client is granted.
    const tokenFor = (secret) => createManagementAuth({
      domain, clientId: client.client_id, clientSecret: secret, audience: identifier,
      fetch: loopbackFetch,
    }).getToken();
    const at = jwtClaims(await tokenFor(client.client_secret));
    assert.deepEqual([at.aud].flat(), [identifier]);
    assert.deepEqual(at.scope.split(' ').sort(), ['read:stock', 'write:stock']);

    const rotated = await mgmt.clients.rotateSecret(client.client_id);
    assert.equal(rotated.client_id, client.client_id);
    assert.match(rotated.client_secret, /^[A-Za-z0-9]{64}$/);
    assert.notEqual(rotated.client_secret, client.client_secret);
    assert.equal(jwtClaims(await tokenFor(rotated.client_secret)).azp, client.client_id);
    await assert.rejects(tokenFor(client.client_secret),
      (err) => err instanceof ManagementError && err.statusCode === 401);

    await mgmt.clientGrants.delete(grant.id);
    await assertApiError(mgmt.clientGrants.get(grant.id),
      { type: Management.NotFoundError, status: 404, errorCode: 'inexistent_client_grant' });
    await mgmt.clients.delete(client.client_id);
    await assertApiError(mgmt.clients.get(client.client_id),
      { type: Management.NotFoundError, status: 404, errorCode: 'inexistent_client' });
  });

  it('manages organizations, their members and member roles', async () => {
    const name = uniqueId('sdk-org');
    const org = await mgmt.organizations.create({ name, display_name: 'SDK Org' });
    assert.match(org.id, /^org_/);
    assert.equal(org.name, name);
    const byName = await mgmt.organizations.getByName(name);
    assert.equal(byName.id, org.id);
    assert.equal((await mgmt.organizations.get(org.id)).display_name, 'SDK Org');

    const role = await mgmt.roles.create({ name: uniqueId('sdk-org-role') });
    const ann = await mgmt.users.create(newUser());
    const bob = await mgmt.users.create(newUser());
    await mgmt.organizations.members.create(org.id, { members: [ann.user_id, bob.user_id] });
    const members = await collect(mgmt.organizations.members.list(org.id));
    assert.deepEqual(members.map((m) => m.user_id).sort(), [ann.user_id, bob.user_id].sort());

    await mgmt.organizations.members.roles.assign(org.id, ann.user_id, { roles: [role.id] });
    const annRoles = await collect(mgmt.organizations.members.roles.list(org.id, ann.user_id));
    assert.deepEqual(annRoles.map((r) => r.id), [role.id]);
    assert.deepEqual(await collect(mgmt.organizations.members.roles.list(org.id, bob.user_id)), []);

    const annOrgs = await collect(mgmt.users.organizations.list(ann.user_id));
    assert.deepEqual(annOrgs.map((o) => o.id), [org.id]);

    // Checkpoint pagination: take=1 walks every organization through `next`.
    const second = await mgmt.organizations.create({ name: uniqueId('sdk-org') });
    const page = await mgmt.organizations.list({ take: 1 });
    assert.equal(page.data.length, 1);
    assert.ok(page.hasNextPage(), JSON.stringify(page.response));
    const all = (await collect(mgmt.organizations.list({ take: 1 }))).map((o) => o.id);
    assert.equal(new Set(all).size, all.length);
    assert.ok(all.includes(org.id) && all.includes(second.id));

    await mgmt.organizations.members.delete(org.id, { members: [bob.user_id] });
    assert.deepEqual((await collect(mgmt.organizations.members.list(org.id))).map((m) => m.user_id),
      [ann.user_id]);
    await mgmt.organizations.delete(second.id);
    await assertApiError(mgmt.organizations.getByName(second.name),
      { type: Management.NotFoundError, status: 404, errorCode: 'inexistent_organization' });
  });

  it('lists connections', async () => {
    const connections = await collect(mgmt.connections.list());
    const db = connections.find((c) => c.name === DEFAULT_CONNECTION);
    assert.ok(db, JSON.stringify(connections));
    assert.match(db.id, /^con_/);
    assert.equal(db.strategy, 'auth0');
    assert.equal((await mgmt.connections.get(db.id)).name, DEFAULT_CONNECTION);
    const byStrategy = await collect(mgmt.connections.list({ strategy: 'auth0' }));
    assert.ok(byStrategy.every((c) => c.strategy === 'auth0') &&
      byStrategy.some((c) => c.id === db.id));
  });

  it('lists and reads log events', async () => {
    // Provisioning a tenant is one `sapi` entry in the control plane's log.
    const tenant = await createTenant();
    const page = await mgmt.logs.list({ per_page: 100, include_totals: true });
    assert.ok(page.response.total >= page.data.length);
    for (const e of page.data) {
      assert.equal(typeof e.log_id, 'string');
      assert.equal(typeof e.type, 'string');
      assert.ok(!Number.isNaN(Date.parse(e.date)), e.date);
    }
    const provision = page.data.find((e) => e.details?.operation === 'provision' &&
      e.details?.tenant_id === tenant);
    assert.ok(provision, JSON.stringify(page.response));
    assert.equal(provision.type, 'sapi');
    const one = await mgmt.logs.get(provision.log_id);
    assert.equal(one.log_id, provision.log_id);
    assert.equal(one.type, 'sapi');
    assert.equal(one.details.tenant_id, tenant);
    await assertApiError(mgmt.logs.get('doesnotexist'),
      { type: Management.NotFoundError, status: 404 });
  });

  it('lists, rotates and revokes signing keys', async () => {
    // On a child tenant (through platform staff), so the control plane's keys stay as they are.
    const tenant = await createTenant();
    const child = new ManagementClient({
      domain: `${domain}/t/${tenant}`, token: createManagementAuth(credentials()).getToken,
      fetch: loopbackFetch, maxRetries: 0,
    });
    const keys = await child.keys.signing.list();
    const current = keys.find((k) => k.current);
    const next = keys.find((k) => k.next);
    assert.ok(current && next && current.kid !== next.kid, JSON.stringify(keys));
    assert.equal((await child.keys.signing.get(current.kid)).kid, current.kid);

    const rotated = await child.keys.signing.rotate();
    assert.equal(rotated.kid, next.kid, 'the published next key becomes current');
    const after = await child.keys.signing.list();
    assert.equal(after.find((k) => k.kid === current.kid).previous, true);
    assert.equal(after.find((k) => k.current).kid, next.kid);

    // Revoking the current key is refused (400; the SDK has no typed error for it on this route).
    await assertApiError(child.keys.signing.revoke(next.kid),
      { type: ManagementError, status: 400, errorCode: 'invalid_operation' });
    const revoked = await child.keys.signing.revoke(current.kid);
    assert.equal(revoked.kid, current.kid);
    assert.equal(revoked.revoked, true);
    await assertApiError(child.keys.signing.get('no-such-kid'),
      { type: Management.NotFoundError, status: 404 });
  });

  it('returns 404, 409 and 400 as the SDK\'s typed errors with Auth0\'s error body', async () => {
    await assertApiError(mgmt.users.get('auth0|000000000000000000000000'), {
      type: Management.NotFoundError, status: 404, errorCode: 'inexistent_user',
      message: /user does not exist/,
    });
    await assertApiError(mgmt.roles.get('rol_doesnotexist'),
      { type: Management.NotFoundError, status: 404, errorCode: 'inexistent_role' });

    const u = newUser();
    await mgmt.users.create(u);
    await assertApiError(mgmt.users.create(u),
      { type: Management.ConflictError, status: 409, message: /^The user already exists\.$/ });
    const name = uniqueId('sdk-dup');
    await mgmt.organizations.create({ name });
    await assertApiError(mgmt.organizations.create({ name }),
      { type: Management.ConflictError, status: 409 });

    await assertApiError(
      mgmt.users.create({ connection: DEFAULT_CONNECTION, email: 'not-an-email' }),
      { type: Management.BadRequestError, status: 400, errorCode: 'invalid_body' });

    const anonymous = new ManagementClient({ domain, token: 'not-a-token', fetch: loopbackFetch });
    await assertApiError(anonymous.users.list(),
      { type: Management.UnauthorizedError, status: 401 });
  });

  it('manages a path-routed child tenant with the control-plane token', async () => {
    const tenant = await createTenant();
    // Platform staff: the control plane's token acts on the child (rule (c)). The SDK turns the
    // domain into https://127.0.0.1:PORT/t/{tenant}/api/v2.
    const staff = createManagementAuth(credentials());
    const child = new ManagementClient({
      domain: `${domain}/t/${tenant}`, token: staff.getToken, fetch: loopbackFetch, maxRetries: 0,
    });
    const user = await child.users.create(newUser());
    const childUsers = await collect(child.users.list());
    assert.deepEqual(childUsers.map((u) => u.user_id), [user.user_id]);
    assert.ok(traffic.some((t) => t === `POST ${server.base}/t/${tenant}/api/v2/users -> 201`),
      trafficLog());
    assert.deepEqual((await child.users.listUsersByEmail({ email: user.email }))
      .map((u) => u.user_id), [user.user_id]);
    // ... and the control plane does not see the child's user.
    await assertApiError(mgmt.users.get(user.user_id),
      { type: Management.NotFoundError, status: 404, errorCode: 'inexistent_user' });
    assert.deepEqual(await mgmt.users.listUsersByEmail({ email: user.email }), []);

    // The child has its own default connection; the control plane has the child's organization.
    const conns = await collect(child.connections.list());
    assert.ok(conns.some((c) => c.name === DEFAULT_CONNECTION), JSON.stringify(conns));
    const org = await mgmt.organizations.getByName(tenant);
    assert.equal(org.metadata.tenant_id, tenant);

    // Every call by platform staff is in the child's own log.
    const logs = await collect(child.logs.list());
    assert.ok(logs.some((e) => e.type === 'sapi' && e.details?.method === 'POST' &&
      e.details?.path === `/t/${tenant}/api/v2/users`), JSON.stringify(logs));
  });

  it('manages a child tenant with its own client through the tenant-id header', async () => {
    const tenant = await createTenant();
    const staff = new ManagementClient({
      domain: `${domain}/t/${tenant}`, token: createManagementAuth(credentials()).getToken,
      fetch: loopbackFetch, maxRetries: 0,
    });
    const own = await staff.clients.create({
      name: 'child automation', app_type: 'non_interactive', grant_types: ['client_credentials'],
    });
    await staff.clientGrants.create({
      client_id: own.client_id, audience: MGMT_AUDIENCE, scope: ['read:users'],
    });
    const user = await staff.users.create(newUser());

    // The SDK's client credentials need a bare domain; keystead's header routing picks the
    // tenant for the token request and for every API call (the SDK's `headers` option).
    const child = new ManagementClient(credentials({
      clientId: own.client_id, clientSecret: own.client_secret, headers: { 'tenant-id': tenant },
    }));
    const users = await collect(child.users.list());
    assert.deepEqual(users.map((u) => u.user_id), [user.user_id]);
    const auth = createManagementAuth(credentials({
      clientId: own.client_id, clientSecret: own.client_secret, headers: { 'tenant-id': tenant },
    }));
    const claims = jwtClaims(await auth.getToken());
    assert.equal(claims.tenant_id, tenant);
    assert.equal(claims.azp, own.client_id);
    await assertApiError(child.users.create(newUser()),
      { type: Management.ForbiddenError, status: 403, message: /scope/ });
    // Without the header the same client is unknown on the control plane.
    const lost = new ManagementClient(credentials({
      clientId: own.client_id, clientSecret: own.client_secret,
    }));
    await assert.rejects(lost.users.list(),
      (err) => err instanceof ManagementError && err.statusCode === 401 &&
        err.body.error === 'invalid_client');
  });
});
