// A real OpenID provider for the test suite: oidc-provider (OpenID Certified), configured from a
// JSON file, on a loopback port. It issues RFC 9068 JWT access tokens for one resource indicator
// (ScoreBridge's audience) to client-credentials clients, and serves its real login page
// (devInteractions) for the authorization code flow.
//
//   node provider.mjs CONFIG.json
//   CONFIG: {"port", "issuer", "audience", "scopes": "...", "jwks": {"keys": [private JWKs]},
//            "clients": [{"client_id", "client_secret", "scope", "claims": {...},
//                         "redirect_uris": [...]}]}
//
// Beside the provider, two test hooks (not OpenID endpoints): GET /__stats counts the requests
// for the key set (to show a server does not fetch it per forged token), and POST /__rotate with a
// new {"keys": [...]} replaces the signing keys, as an issuer's key rotation does.
import { readFileSync } from "node:fs";
import http from "node:http";

import Provider from "oidc-provider";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const claimsByClient = Object.fromEntries(config.clients.map((c) => [c.client_id, c.claims || {}]));
const stats = { jwks: 0, discovery: 0 };

function makeProvider(jwks) {
  const provider = new Provider(config.issuer, {
    jwks,
    clients: config.clients.map(({ claims, ...client }) => ({
      grant_types: client.redirect_uris ? ["client_credentials", "authorization_code"]
        : ["client_credentials"],
      response_types: client.redirect_uris ? ["code"] : [],
      redirect_uris: [],
      token_endpoint_auth_method: "client_secret_basic",
      ...client,
    })),
    scopes: ["openid", "profile", "email", ...config.scopes.split(" ")],
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => config.audience,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource) => {
          if (resource !== config.audience) {
            throw new Provider.errors.InvalidTarget("unknown resource");
          }
          return {
            scope: config.scopes,
            audience: config.audience,
            accessTokenFormat: "jwt",
            accessTokenTTL: 300,
            jwt: { sign: { alg: "RS256" } },
          };
        },
      },
    },
    extraTokenClaims: (ctx, token) => claimsByClient[token.clientId] || {},
    findAccount: (ctx, sub) => ({
      accountId: sub,
      claims: () => ({ sub, name: `User ${sub}`, email: `${sub}@example.test` }),
    }),
    pkce: { required: () => true },
    // the ID token carries the profile claims (name, email), as Entra ID and Okta do
    conformIdTokenClaims: false,
    claims: { openid: ["sub"], profile: ["name"], email: ["email"] },
    ttl: { ClientCredentials: 300, AccessToken: 300 },
  });
  provider.proxy = false;
  return provider;
}

let handler = makeProvider(config.jwks).callback();

const server = http.createServer((req, res) => {
  if (req.url === "/__stats") {
    res.setHeader("Content-Type", "application/json");
    res.end(JSON.stringify(stats));
    return;
  }
  if (req.url === "/__rotate" && req.method === "POST") {
    let body = "";
    req.on("data", (chunk) => { body += chunk; });
    req.on("end", () => {
      handler = makeProvider(JSON.parse(body)).callback();
      res.end("rotated");
    });
    return;
  }
  if (req.url.startsWith("/jwks")) stats.jwks += 1;
  if (req.url.startsWith("/.well-known/openid-configuration")) stats.discovery += 1;
  handler(req, res);
});

server.listen(config.port, "127.0.0.1", () => {
  process.stdout.write(`listening on ${config.issuer}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
