// The peer of bench/run: node-oidc-provider (the npm package `oidc-provider`, version pinned in
// package.json) configured as a plain OAuth 2.0 authorization server for machine-to-machine
// clients, i.e. what bench/run measures on Keystead:
//
//   - one client, `bench-client` / BENCH_PEER_SECRET, allowed only `client_credentials`, authenticating
//     with client_secret_post (the same form body Keystead's clients send);
//   - resource indicators (RFC 8707) with two resource servers whose access tokens are JWTs:
//       urn:bench:rs256  signed RS256 (the default resource when the request names none),
//       urn:bench:es256  signed ES256;
//   - signing keys generated at start with node's crypto: RSA 2048 and EC P-256, the same for
//     every worker (the primary makes them and hands them to the workers);
//   - discovery at /.well-known/openid-configuration, JWKS at /jwks (the package's defaults);
//   - the default in-memory adapter (JWT access tokens are not stored by oidc-provider).
//
// Node runs JavaScript on one thread, so the server is a node:cluster of PEER_WORKERS processes
// (default 2, the number of event loops Keystead runs in the benchmark) sharing one listening
// socket; the primary only hands connections to the workers (round-robin, node's default on
// Linux).
//
// Usage: node server.js [PORT]   (or PORT / BENCH_PEER_PORT in the environment; 0 or none picks a free
// port). Listens on 127.0.0.1 and prints `peer listening on http://127.0.0.1:PORT` once every
// worker listens.
import cluster from 'node:cluster';
import crypto from 'node:crypto';
import process from 'node:process';

const HOST = '127.0.0.1';
const WORKERS = Math.max(1, Number(process.env.PEER_WORKERS || 2));
const CLIENT_ID = process.env.BENCH_PEER_CLIENT_ID || 'bench-client';
const CLIENT_SECRET = process.env.BENCH_PEER_SECRET || 'bench-peer-secret-0123456789abcdef0123456789abcdef';

function generateKeys() {
  // Generated as PEM text and parsed again: exporting the generated KeyObject itself as a JWK
  // can deadlock in Node 20 (a garbage collection inside the export runs the key generation
  // job's destructor, which takes the mutex the export holds).
  const pem = { privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } };
  const rsa = crypto.createPrivateKey(crypto.generateKeyPairSync('rsa', { modulusLength: 2048, ...pem }).privateKey);
  const ec = crypto.createPrivateKey(crypto.generateKeyPairSync('ec', { namedCurve: 'P-256', ...pem }).privateKey);
  const jwk = (key, alg, kid) => ({ ...key.export({ format: 'jwk' }), alg, use: 'sig', kid });
  return { keys: [jwk(rsa, 'RS256', 'rs256-1'), jwk(ec, 'ES256', 'es256-1')] };
}

async function freePort() {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, HOST, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

if (cluster.isPrimary) {
  let port = Number(process.argv[2] ?? process.env.BENCH_PEER_PORT ?? process.env.PORT ?? 0);
  if (port === 0) port = await freePort();
  const env = {
    BENCH_PEER_JWKS: JSON.stringify(generateKeys()),
    BENCH_PEER_COOKIE_KEY: crypto.randomBytes(32).toString('hex'),
    BENCH_PEER_BOUND_PORT: String(port),
  };
  let shuttingDown = false;
  let listening = 0;
  for (let i = 0; i < WORKERS; i += 1) {
    cluster.fork(env).on('listening', () => {
      listening += 1;
      if (listening === WORKERS) {
        const pids = Object.values(cluster.workers).map((w) => w.process.pid).join(',');
        console.log(`peer listening on http://${HOST}:${port} (${WORKERS} workers, pids ${pids})`);
      }
    });
  }
  cluster.on('exit', (w, code, signal) => {
    if (!shuttingDown) {
      console.error(`peer worker ${w.process.pid} exited (code ${code}, signal ${signal})`);
      shuttingDown = true;
      for (const other of Object.values(cluster.workers)) other.process.kill('SIGTERM');
      process.exitCode = 1;
    }
  });
  const stop = () => {
    shuttingDown = true;
    for (const w of Object.values(cluster.workers)) w.process.kill('SIGTERM');
    setTimeout(() => process.exit(0), 300).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  const { default: Provider, errors } = await import('oidc-provider');
  const port = Number(process.env.BENCH_PEER_BOUND_PORT);
  const jwks = JSON.parse(process.env.BENCH_PEER_JWKS);
  const RESOURCES = {
    'urn:bench:rs256': 'RS256',
    'urn:bench:es256': 'ES256',
  };
  const provider = new Provider(`http://${HOST}:${port}`, {
    clients: [{
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_post',
    }],
    jwks,
    cookies: { keys: [process.env.BENCH_PEER_COOKIE_KEY] },
    findAccount: async () => undefined,
    scopes: ['read'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: false },
      revocation: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => 'urn:bench:rs256',
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resourceIndicator) => {
          const alg = RESOURCES[resourceIndicator];
          if (!alg) throw new errors.InvalidTarget();
          return {
            scope: 'read',
            audience: resourceIndicator,
            accessTokenTTL: 86400,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg } },
          };
        },
      },
    },
  });
  provider.proxy = false;
  const { createServer } = await import('node:http');
  const server = createServer(provider.callback());
  server.keepAliveTimeout = 60000;
  server.listen(port, HOST);
  process.on('SIGTERM', () => process.exit(0));
}
