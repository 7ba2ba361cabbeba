// A real OpenID Connect provider for the end-to-end tests (tests/tests/oidc.rs):
// npm `oauth2-mock-server` serving its discovery document, JWKS and token
// endpoint on 127.0.0.1:<port>, plus a control port for the test:
//
//   POST /mint    {"claims": {...}, "expiresIn": s, "kid": k}  -> the signed JWT
//                 (claims are merged over iss/iat/exp/nbf; "kid" picks a key,
//                 a retired one included)
//   POST /rotate  -> {"kid": new, "retired": [old...]}: a new signing key is
//                 served, every older one is removed from the JWKS
//   GET  /keys    -> the JWKS as served
//   POST /login-claims {...} -> claims merged into every token the provider's
//                 own token endpoint issues from now on (an authorization-code
//                 login's ID token: the web console's SSO tests)
//
// Usage: node provider.js PORT CONTROL_PORT. Prints one JSON line
// {"issuer": ..., "control": ...} once both listen. The module is found
// in npm's global root (scripts/test installs it there).
import { execSync } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [port, controlPort] = process.argv.slice(2).map(Number);
const root = process.env.OAUTH2_MOCK_SERVER_ROOT ||
  execSync('npm root -g', { encoding: 'utf8' }).trim();
const entry = path.join(root, 'oauth2-mock-server', 'dist', 'index.mjs');
const { OAuth2Server } = await import(pathToFileURL(entry).href);

const server = new OAuth2Server();
const keys = server.issuer.keys;
const retired = new Set();
// the JWKS served leaves retired keys out (the store itself has no removal)
const toJSON = keys.toJSON.bind(keys);
keys.toJSON = (priv) => toJSON(priv).filter((k) => !retired.has(k.kid));
let current = (await keys.generate('RS256')).kid;
let loginClaims = {};
server.service.on('beforeTokenSigning', (token) => { Object.assign(token.payload, loginClaims); });

await server.start(port, '127.0.0.1');

function body(req) {
  return new Promise((resolve, reject) => {
    let data = '';
    req.on('data', (c) => { data += c; if (data.length > 1 << 20) req.destroy(); });
    req.on('end', () => { try { resolve(data ? JSON.parse(data) : {}); } catch (e) { reject(e); } });
    req.on('error', reject);
  });
}

const control = http.createServer(async (req, res) => {
  try {
    if (req.method === 'POST' && req.url === '/mint') {
      const b = await body(req);
      const token = await server.issuer.buildToken({
        kid: b.kid || current,
        expiresIn: b.expiresIn ?? 600,
        scopesOrTransform: (header, payload) => { Object.assign(payload, b.claims || {}); },
      });
      res.writeHead(200, { 'content-type': 'text/plain' }).end(token);
    } else if (req.method === 'POST' && req.url === '/rotate') {
      retired.add(current);
      current = (await keys.generate('RS256')).kid;
      res.writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ kid: current, retired: [...retired] }));
    } else if (req.method === 'POST' && req.url === '/login-claims') {
      loginClaims = await body(req);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(loginClaims));
    } else if (req.method === 'GET' && req.url === '/keys') {
      res.writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ keys: keys.toJSON() }));
    } else {
      res.writeHead(404).end();
    }
  } catch (e) {
    res.writeHead(500).end(String(e && e.stack || e));
  }
});
control.listen(controlPort, '127.0.0.1', () => {
  console.log(JSON.stringify({ issuer: server.issuer.url, control: controlPort, kid: current }));
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, async () => { control.close(); await server.stop(); process.exit(0); });
}
