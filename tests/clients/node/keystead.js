// Helpers for the client tests: run the real `keystead` binary on 127.0.0.1 (port 0, fresh data
// dir, bootstrap client from the environment), call its Management API, and drive the hosted login
// form over plain HTTP with a small cookie jar.
//
// KEYSTEAD_BIN names the executable (scripts/test sets it to build/server/keystead).
import { spawn } from 'node:child_process';
import {
  mkdtempSync, rmSync, openSync, closeSync, readFileSync, accessSync, constants,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

export const BOOTSTRAP_CLIENT_ID = 'clients-bootstrap-client';
export const BOOTSTRAP_CLIENT_SECRET = 'clients-bootstrap-secret-0123456789abcdef0123456789abcdef';
export const MGMT_AUDIENCE = 'urn:keystead:management';
export const DEFAULT_CONNECTION = 'Username-Password-Authentication';
export const PASSWORD = 'Correct-Horse-9-battery';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;
const LISTEN_RE = /keystead listening on (https?):\/\/127\.0\.0\.1:(\d+)/;

export function uniqueId(prefix = 't') {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

export function keysteadBin() {
  const bin = path.resolve(REPO, process.env.KEYSTEAD_BIN || 'build/server/keystead');
  accessSync(bin, constants.X_OK);
  return bin;
}

/** A running keystead process. `await Server.start()`; `await srv.stop()` (asserts exit 0). */
export class Server {
  static async start({ args = [], env = {} } = {}) {
    const srv = new Server();
    try {
      await srv.#start(args, env);
    } catch (e) {
      if (srv.#dir) rmSync(srv.#dir, { recursive: true, force: true });
      throw e;
    }
    return srv;
  }

  #proc;
  #token;
  #dir;
  #stderrPath;
  #stdout = '';

  async #start(args, extraEnv) {
    const bin = keysteadBin();
    this.#dir = mkdtempSync(path.join(tmpdir(), 'keystead-clients-'));
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith('KEYSTEAD_')));
    Object.assign(env, {
      KEYSTEAD_DATA_DIR: path.join(this.#dir, 'data'),
      KEYSTEAD_MODE: 'dev',
      KEYSTEAD_BOOTSTRAP_CLIENT_ID: BOOTSTRAP_CLIENT_ID,
      KEYSTEAD_BOOTSTRAP_CLIENT_SECRET: BOOTSTRAP_CLIENT_SECRET,
      KEYSTEAD_THREADS: '2',
    }, extraEnv);
    this.#stderrPath = path.join(this.#dir, 'stderr.log');
    const errFd = openSync(this.#stderrPath, 'a');
    this.#proc = spawn(bin, ['serve', '--listen', '127.0.0.1:0', ...args],
      { env, stdio: ['ignore', 'pipe', errFd] });
    closeSync(errFd);
    const wanted = args.includes('--tls-listen') ? ['http', 'https'] : ['http'];
    const ports = {};
    await new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => fail(`did not announce ${wanted} within ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
      const fail = (why) => {
        clearTimeout(timer);
        this.#proc.kill('SIGKILL');
        reject(new Error(`keystead ${why}\n${this.logs()}`));
      };
      this.#proc.stdout.setEncoding('utf8');
      this.#proc.stdout.on('data', (chunk) => {
        this.#stdout += chunk;
        for (const line of this.#stdout.split('\n')) {
          const m = LISTEN_RE.exec(line);
          if (m && !(m[1] in ports)) ports[m[1]] = Number(m[2]);
        }
        if (wanted.every((w) => w in ports)) {
          clearTimeout(timer);
          resolve();
        }
      });
      this.#proc.on('exit', (code) => fail(`exited early with ${code}`));
    });
    this.#proc.removeAllListeners('exit');
    this.httpPort = ports.http;
    this.httpsPort = ports.https;
  }

  /** http://127.0.0.1:PORT (no trailing slash). */
  get base() {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  get tlsBase() {
    return `https://127.0.0.1:${this.httpsPort}`;
  }

  /** The issuer of the control plane (tenant undefined) or of a path-routed child tenant. */
  issuer(tenant) {
    return tenant ? `${this.base}/t/${tenant}/` : `${this.base}/`;
  }

  url(p, tenant) {
    return (tenant ? `${this.base}/t/${tenant}` : this.base) + p;
  }

  logs() {
    let err = '';
    try {
      err = readFileSync(this.#stderrPath, 'utf8');
    } catch { /* not there */ }
    const tail = (s) => (s.length > 6000 ? '...\n' + s.slice(-6000) : s);
    return `--- keystead stdout ---\n${tail(this.#stdout)}\n--- keystead stderr ---\n${tail(err)}`;
  }

  /** SIGTERM; resolves with the exit code (throws if it does not exit in time or exits != 0). */
  async stop() {
    const proc = this.#proc;
    try {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((resolve) => {
          proc.once('exit', (code, sig) => resolve(code ?? sig));
        });
        proc.kill('SIGTERM');
        const code = await Promise.race([exited,
          new Promise((resolve) => setTimeout(() => resolve('timeout'), STOP_TIMEOUT_MS).unref())]);
        if (code === 'timeout') {
          proc.kill('SIGKILL');
          throw new Error(
            `keystead did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM\n${this.logs()}`);
        }
        if (code !== 0) throw new Error(`keystead exited with ${code}\n${this.logs()}`);
      }
    } finally {
      rmSync(this.#dir, { recursive: true, force: true });
    }
  }

  /** A Management API token of the bootstrap client (cached). */
  async mgmtToken() {
    if (!this.#token) {
      const r = await fetch(this.url('/oauth/token'), {
        method: 'POST',
        body: new URLSearchParams({
          grant_type: 'client_credentials', client_id: BOOTSTRAP_CLIENT_ID,
          client_secret: BOOTSTRAP_CLIENT_SECRET, audience: MGMT_AUDIENCE,
        }),
      });
      const body = await r.text();
      if (r.status !== 200) throw new Error(`management token: ${r.status} ${body}`);
      this.#token = JSON.parse(body).access_token;
    }
    return this.#token;
  }

  /**
   * A Management API v2 call (path below /api/v2) with the bootstrap client's token; throws
   * unless the status is `expect`. Returns the parsed body (or null when empty).
   */
  async api(method, p, { tenant, json, expect } = {}) {
    const headers = { authorization: `Bearer ${await this.mgmtToken()}` };
    if (json !== undefined) headers['content-type'] = 'application/json';
    const r = await fetch(this.url('/api/v2' + p, tenant), {
      method, headers, body: json === undefined ? undefined : JSON.stringify(json),
    });
    const text = await r.text();
    const want = expect ?? { GET: 200, POST: 201, PATCH: 200, DELETE: 204 }[method];
    if (r.status !== want) {
      throw new Error(`${method} ${tenant ? `/t/${tenant}` : ''}/api/v2${p}: expected ${want}, ` +
        `got ${r.status} ${text}`);
    }
    return text ? JSON.parse(text) : null;
  }

  /** Creates a child tenant through the Management API; returns its id. */
  async createTenant() {
    const id = uniqueId('c');
    await this.api('POST', '/tenants', { json: { id, friendly_name: `Clients ${id}` } });
    return id;
  }

  /** Creates a database user in a tenant; returns {user_id, email}. */
  async createUser(tenant, extra = {}) {
    const email = `${uniqueId('u')}@example.com`;
    const u = await this.api('POST', '/users', {
      tenant,
      json: {
        email, password: PASSWORD, name: 'Client Test', connection: DEFAULT_CONNECTION, ...extra,
      },
    });
    return { user_id: u.user_id, email };
  }
}

/** A minimal cookie jar for one host: name -> value, from Set-Cookie, sent back as Cookie. */
export class CookieJar {
  #cookies = new Map();

  store(response) {
    for (const sc of response.headers.getSetCookie()) {
      const [pair, ...attrs] = sc.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age\s*=\s*(0|-)/i.test(a)) || value === '';
      if (expired) this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }

  header() {
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  get size() {
    return this.#cookies.size;
  }

  /** fetch with the jar's cookies, never following redirects; stores the answer's cookies. */
  async fetch(url, init = {}) {
    const headers = new Headers(init.headers);
    if (this.#cookies.size) headers.set('cookie', this.header());
    const r = await fetch(url, { ...init, headers, redirect: 'manual' });
    this.store(r);
    return r;
  }
}

function hiddenInput(html, name) {
  const input = html.match(new RegExp(`<input[^>]*name="${name}"[^>]*>`));
  const value = input && input[0].match(/value="([^"]*)"/);
  if (!value) throw new Error(`no hidden input ${name} in page:\n${html.slice(0, 2000)}`);
  return value[1].replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

function formAction(html, base) {
  const m = html.match(/<form[^>]*action="([^"]*)"/);
  if (!m) throw new Error(`no form in page:\n${html.slice(0, 2000)}`);
  return new URL(m[1].replace(/&amp;/g, '&'), base).href;
}

/**
 * Plays the browser for an authorization URL: follows the server's redirects to the hosted login
 * page, reads its hidden `state` and `_csrf` inputs, posts username and password to /u/login with
 * the session cookie, and follows redirects until one leaves the server for `redirectUri`.
 * Returns the callback URL (with code and state). `jar` keeps the session between logins.
 */
export async function loginThroughForm(authorizationUrl,
  { email, password = PASSWORD, redirectUri, jar }) {
  jar ??= new CookieJar();
  let url = String(authorizationUrl);
  let submitted = false;
  for (let hop = 0; hop < 10; hop++) {
    if (url.startsWith(redirectUri)) return url;
    const r = await jar.fetch(url);
    const body = await r.text();
    if (r.status >= 300 && r.status < 400) {
      url = new URL(r.headers.get('location'), url).href;
      continue;
    }
    if (r.status !== 200 || submitted || !/type="password"/.test(body)) {
      throw new Error(`unexpected answer from ${url}: ${r.status}\n${body.slice(0, 2000)}`);
    }
    const action = formAction(body, url);
    if (new URL(action).pathname.endsWith('/u/login') === false) {
      throw new Error(`login form posts to ${action}, expected .../u/login`);
    }
    const post = await jar.fetch(action, {
      method: 'POST',
      body: new URLSearchParams({
        state: hiddenInput(body, 'state'), _csrf: hiddenInput(body, '_csrf'),
        username: email, password,
      }),
    });
    const postBody = await post.text();
    if (post.status !== 302) {
      throw new Error(
        `POST ${action}: expected 302, got ${post.status}\n${postBody.slice(0, 2000)}`);
    }
    submitted = true;
    url = new URL(post.headers.get('location'), action).href;
  }
  throw new Error(`too many redirects from ${authorizationUrl}`);
}

/** The payload of a JWT, unverified (the client libraries verify; this is for assertions). */
export function jwtClaims(token) {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
}
