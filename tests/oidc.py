"""A real OpenID provider for tests: oidc-provider (npm, OpenID Certified) run by Node on a free
loopback port (tests/oidc_provider/provider.mjs), always stopped.

The test side makes the provider's signing keys, so that beside the tokens the provider issues
(client credentials for a resource indicator) a test can sign the awkward ones a provider never
would (expired, not yet valid, for another audience) with the provider's own published key."""
from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.live import ROOT, free_port

FOLDER = ROOT / "tests" / "oidc_provider"
AUDIENCE = "api://scorebridge-test"
SCOPES = "score read deploy admin"
SECRET = "a-client-secret-long-enough-for-hs256-32b"
# the clients: what each is allowed to ask for, and the claims the provider adds to its tokens
CLIENTS = {
    "analyst": {"scope": "score read", "claims": {"name": "Ada Analyst", "email": "ada@example.test"}},
    "releaser": {"scope": "deploy read", "claims": {"name": "Rhea Releaser"}},
    "admin": {"scope": SCOPES, "claims": {"name": "Ida Admin"}},
    # no scope of ours: only the group mapping can grant one
    "grouped": {"scope": "", "claims": {"name": "Gus Grouped", "groups": ["sb-analysts"],
                                        "roles": ["Other.Role"]}},
    # per-model access: may see and score only "churn"
    "limited": {"scope": "score read", "claims": {"name": "Lim Limited",
                                                  "sb_models": ["churn"]}},
}


def private_jwk(kid: str) -> tuple[dict[str, Any], rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key))
    jwk.update(kid=kid, use="sig", alg="RS256")
    return jwk, key


class OidcProvider:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        # the port a test serves ScoreBridge on for browser sign-in (the redirect URI's)
        self.web_port = free_port()
        self.web_url = f"http://127.0.0.1:{self.web_port}"
        self.audience = AUDIENCE
        jwk, self.key = private_jwk("key-1")
        self.kid = "key-1"
        self.public_jwk = {k: jwk[k] for k in ("kty", "n", "e", "kid", "use", "alg")}
        config = {"port": self.port, "issuer": self.issuer, "audience": AUDIENCE, "scopes": SCOPES,
                  "jwks": {"keys": [jwk]},
                  "clients": [{"client_id": cid, "client_secret": SECRET,
                               **{k: v for k, v in spec.items() if v}}
                              for cid, spec in CLIENTS.items()]
                  + [{"client_id": "web", "client_secret": SECRET,
                      "scope": f"openid profile email {SCOPES}",
                      "redirect_uris": [f"{self.web_url}/auth/callback"]}]}
        path = workdir / "oidc-provider.json"
        path.write_text(json.dumps(config))
        self.log = open(workdir / "oidc-provider.log", "w+")
        self.proc = subprocess.Popen(["node", str(FOLDER / "provider.mjs"), str(path)], cwd=FOLDER,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self._wait()

    def _wait(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"oidc-provider exited: {self.output()[-2000:]}")
            try:
                if requests.get(self.issuer + "/__stats", timeout=1).ok:
                    return
            except requests.RequestException:
                time.sleep(0.1)
        self.stop()
        raise TimeoutError("oidc-provider did not start")

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()

    def settings(self, **extra: Any) -> dict[str, Any]:
        """The Settings fields that point a server at this provider."""
        return {"oidc_issuer": self.issuer, "oidc_audience": (self.audience,), **extra}

    def env(self, **extra: str) -> dict[str, str]:
        return {"SCOREBRIDGE_OIDC_ISSUER": self.issuer, "SCOREBRIDGE_OIDC_AUDIENCE": self.audience,
                **extra}

    def token(self, client: str = "analyst", scope: str | None = None) -> str:
        """An access token the provider issues to ``client`` (client credentials) for our API."""
        data = {"grant_type": "client_credentials", "resource": self.audience}
        wanted = CLIENTS[client]["scope"] if scope is None else scope
        if wanted:
            data["scope"] = wanted
        resp = requests.post(self.issuer + "/token", data=data, auth=(client, SECRET), timeout=10)
        assert resp.status_code == 200, resp.text
        return resp.json()["access_token"]

    def sign(self, headers: dict[str, Any] | None = None, key: Any = None,
             algorithm: str = "RS256", **claims: Any) -> str:
        """A token signed with the provider's own key (or ``key``), claims as given over sane
        defaults (claims set to None are left out)."""
        now = int(time.time())
        body = {"iss": self.issuer, "aud": self.audience, "sub": "forged-" + uuid.uuid4().hex[:6],
                "iat": now, "exp": now + 300, "scope": "score read", "jti": uuid.uuid4().hex}
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, self.key if key is None else key, algorithm=algorithm,
                          headers={"kid": self.kid, "typ": "at+jwt", **(headers or {})})

    def rotate(self) -> str:
        """A new signing key at the provider (the old one withdrawn); its kid."""
        self.kid = f"key-{uuid.uuid4().hex[:8]}"
        jwk, self.key = private_jwk(self.kid)
        self.public_jwk = {k: jwk[k] for k in ("kty", "n", "e", "kid", "use", "alg")}
        requests.post(self.issuer + "/__rotate", data=json.dumps({"keys": [jwk]}),
                      timeout=10).raise_for_status()
        return self.kid

    def jwks_fetches(self) -> int:
        return int(requests.get(self.issuer + "/__stats", timeout=5).json()["jwks"])


def start_provider(workdir: Path) -> OidcProvider:
    if shutil.which("node") is None or not (FOLDER / "node_modules" / "oidc-provider").exists():
        pytest.skip("run `make node` first (it installs the test OpenID provider)")
    return OidcProvider(workdir)
