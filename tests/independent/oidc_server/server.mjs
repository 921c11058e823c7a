// panva's oidc-provider as an independent authorization server for whop_oauth's tests.
//
//   OIDC_ACCESS_TOKEN_TTL=10 node server.mjs
//
// Listens on a free loopback port and prints one JSON line, {"issuer": ...}, once ready.
// Refresh tokens rotate on every use, and presenting a spent one revokes the whole
// grant (the provider's reuse detection): the failure whop_oauth must never cause.
// Sign-in needs no browser: the interaction route approves every request at once.
// Test-only: GET /__test/stats counts token grants, reuse detections and revocations.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const accessTokenTtl = Number(process.env.OIDC_ACCESS_TOKEN_TTL ?? '10');
const REDIRECT_URI = 'http://127.0.0.1/callback';
const ACCOUNT = 'user_independent';
const DAY = 24 * 60 * 60;

// One client per way of authenticating at the token endpoint (whop_oauth supports all three).
const clients = [
  ['client-post', 'client_secret_post'],
  ['client-basic', 'client_secret_basic'],
  ['client-public', 'none'],
].map(([clientId, method]) => ({
  client_id: clientId,
  ...(method === 'none' ? {} : { client_secret: `${clientId}-secret-for-tests-only` }),
  token_endpoint_auth_method: method,
  redirect_uris: [REDIRECT_URI],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
}));
// The same three for the example app (examples/starlette_app), whose callback is
// /auth/callback on whatever loopback port a test gives it: 'native' clients may use
// any loopback port (RFC 8252 section 7.3).
const APP_REDIRECT_URI = 'http://127.0.0.1/auth/callback';
for (const [clientId, method] of [
  ['app-post', 'client_secret_post'],
  ['app-basic', 'client_secret_basic'],
  ['app-public', 'none'],
]) {
  clients.push({
    client_id: clientId,
    ...(method === 'none' ? {} : { client_secret: `${clientId}-secret-for-tests-only` }),
    token_endpoint_auth_method: method,
    application_type: 'native',
    redirect_uris: [APP_REDIRECT_URI],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
  });
}

const stats = {
  authorization_code: 0, // code exchanges that succeeded
  refresh_token: 0, // refresh grants that succeeded
  refresh_errors: 0, // refresh grants refused, for any reason
  reuse_detected: 0, // a spent refresh token presented again (the grant is revoked)
  grants_revoked: 0, // grants ended, by reuse detection or by the revocation endpoint
};

function listen(server) {
  return new Promise((resolve) => { server.listen(0, '127.0.0.1', resolve); });
}

const server = http.createServer();
await listen(server);
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients,
  // A fresh RSA key per run: id_tokens are RS256, and no key lives in the repository.
  jwks: { keys: [generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' })] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  features: {
    devInteractions: { enabled: false },
    introspection: { enabled: true },
    revocation: { enabled: true },
  },
  pkce: { required: () => true },
  rotateRefreshToken: true,
  // A refresh token with every grant, offline_access or not, living beyond the session.
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  expiresWithSession: async () => false,
  ttl: {
    AccessToken: accessTokenTtl,
    AuthorizationCode: 60,
    IdToken: 3600,
    Interaction: 600,
    Session: DAY,
    Grant: DAY,
    RefreshToken: DAY,
  },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  findAccount: async (ctx, sub) => ({
    accountId: sub,
    claims: async () => ({ sub, email: `${sub}@example.test`, email_verified: true, name: sub }),
  }),
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
});

provider.on('grant.success', (ctx) => {
  const grantType = ctx.oidc.params.grant_type;
  if (grantType in stats) stats[grantType] += 1;
});
provider.on('grant.error', (ctx, error) => {
  if (ctx.oidc?.params?.grant_type !== 'refresh_token') return;
  stats.refresh_errors += 1;
  if (error.error_detail === 'refresh token already used') stats.reuse_detected += 1;
});
provider.on('grant.revoked', () => { stats.grants_revoked += 1; });
provider.on('server_error', (ctx, error) => { console.error('server_error', error); });

// Log in as ACCOUNT (or the login_hint) and consent to every requested scope, in one step.
async function approve(req, res) {
  const details = await provider.interactionDetails(req, res);
  const accountId = details.session?.accountId ?? details.params.login_hint ?? ACCOUNT;
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId, clientId: details.params.client_id });
  grant.addOIDCScope(details.params.scope);
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { login: { accountId }, consent: { grantId } }, {
    mergeWithLastSubmission: false,
  });
}

const handle = provider.callback();
server.on('request', (req, res) => {
  const path = req.url.split('?')[0];
  if (req.method === 'GET' && path === '/__test/stats') {
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify(stats));
  } else if (req.method === 'GET' && path.startsWith('/interaction/')) {
    approve(req, res).catch((error) => {
      console.error('interaction failed', error);
      res.statusCode = 500;
      res.end();
    });
  } else {
    handle(req, res);
  }
});

// Stopped by PID (SIGTERM): close the listener and leave.
process.on('SIGTERM', () => { server.close(() => process.exit(0)); server.closeAllConnections(); });

console.log(JSON.stringify({ issuer, accessTokenTtl }));
