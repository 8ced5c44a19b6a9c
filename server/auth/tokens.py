"""Bearer JWT access tokens from the organisation's OpenID provider (ScoreBridge as a resource server).

The issuer and audience are pinned by settings; the discovery document is read from the pinned
issuer (never from a token's own ``iss``) and must name that issuer exactly. Signing keys come from
its ``jwks_uri`` through PyJWT's :class:`jwt.PyJWKClient`: the key set is cached for a bounded
lifetime, and a token with an unknown ``kid`` makes at most one fetch per cooldown, so a flood of
forged tokens cannot turn into a fetch per request. Only asymmetric algorithms are accepted, and
the key's type must fit the header's algorithm (no ``none``, no HS256 signed with a public key).
"""
from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import jwt
import requests

from ..config import Settings
from ..errors import InvalidInput, Unauthorized, Unavailable
from .claims import mapped_models, mapped_scopes, parse_scope_map
from .principal import Principal

ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
              "EdDSA")
# the JWK key type each algorithm family must be signed with
_KEY_TYPE = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}
# RFC 9068 access tokens say at+jwt; many issuers (Entra) say JWT or nothing
_TYPES = {"", "jwt", "at+jwt", "application/at+jwt"}
_JWT_FORM = re.compile(r"^[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*$")
DISCOVERY_PATH = "/.well-known/openid-configuration"


def looks_like_jwt(credential: str) -> bool:
    """A JWT is three base64url parts; an API key starts with ``sb_`` and has no dots."""
    return len(credential) <= 16_384 and bool(_JWT_FORM.match(credential))


class TokenRejected(Unauthorized):
    """A bearer token that is not valid here; ``error`` is RFC 6750's code for the challenge."""

    def __init__(self, detail: str, error: str = "invalid_token") -> None:
        super().__init__(detail)
        self.error = error


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    audiences: tuple[str, ...]
    scope_map: dict[str, dict[str, tuple[str, ...]]]
    models_claim: str
    name_claim: str
    algorithms: tuple[str, ...]
    leeway_seconds: float
    jwks_lifetime_seconds: float
    jwks_cooldown_seconds: float
    authorization_uri: str

    @classmethod
    def from_settings(cls, settings: Settings) -> "OidcConfig | None":
        """The sign-in configuration, or None when no issuer is configured; refuses settings
        that would weaken validation (no audience, a symmetric or unknown algorithm)."""
        if not settings.oidc_issuer:
            return None
        if not settings.oidc_audience:
            raise InvalidInput("SCOREBRIDGE_OIDC_AUDIENCE is required with SCOREBRIDGE_OIDC_ISSUER "
                               "(the API's identifier, e.g. api://<client-id>)")
        bad = [a for a in settings.oidc_algorithms if a not in ASYMMETRIC]
        if bad or not settings.oidc_algorithms:
            raise InvalidInput(f"SCOREBRIDGE_OIDC_ALGORITHMS: {', '.join(bad) or 'none given'} "
                               "not allowed; choose from " + ", ".join(ASYMMETRIC))
        return cls(issuer=settings.oidc_issuer, audiences=settings.oidc_audience,
                   scope_map=parse_scope_map(settings.oidc_scope_map),
                   models_claim=settings.oidc_models_claim, name_claim=settings.oidc_name_claim,
                   algorithms=settings.oidc_algorithms,
                   leeway_seconds=settings.oidc_leeway_seconds,
                   jwks_lifetime_seconds=settings.oidc_jwks_lifetime_seconds,
                   jwks_cooldown_seconds=settings.oidc_jwks_cooldown_seconds,
                   authorization_uri=settings.oidc_authorization_uri)


class TokenVerifier:
    """Validates access tokens for one pinned issuer and audience; safe to share between threads."""

    TIMEOUT = 5.0

    def __init__(self, config: OidcConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._discovery: dict[str, Any] | None = None
        self._discovery_at = 0.0
        self._discovery_failed_at = -1e9
        self._keys: jwt.PyJWKClient | None = None

    # -- the issuer's documents --------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        """The issuer's discovery document (cached as long as the key set; refetched after)."""
        with self._lock:
            now = time.monotonic()
            fresh = now - self._discovery_at < self.config.jwks_lifetime_seconds
            if self._discovery is not None and fresh:
                return self._discovery
            if now - self._discovery_failed_at < self.config.jwks_cooldown_seconds:
                if self._discovery is not None:
                    return self._discovery
                raise Unavailable("the identity provider's discovery document could not be read "
                                  "(retrying shortly)")
            try:
                doc = self._fetch_discovery()
            except Unavailable:
                self._discovery_failed_at = now
                if self._discovery is not None:
                    return self._discovery  # the keys' own cache bounds how stale this may be
                raise
            if self._discovery is None or doc.get("jwks_uri") != self._discovery.get("jwks_uri"):
                self._keys = jwt.PyJWKClient(
                    doc["jwks_uri"], cache_jwk_set=True,
                    lifespan=self.config.jwks_lifetime_seconds, timeout=self.TIMEOUT,
                    cooldown_duration=self.config.jwks_cooldown_seconds)
            self._discovery, self._discovery_at = doc, now
            return doc

    def _fetch_discovery(self) -> dict[str, Any]:
        url = self.config.issuer.rstrip("/") + DISCOVERY_PATH
        try:
            resp = requests.get(url, timeout=self.TIMEOUT, allow_redirects=False)
            resp.raise_for_status()
            doc = resp.json()
        except (requests.RequestException, ValueError) as exc:
            raise Unavailable(f"the identity provider's discovery document at {url} could not "
                              f"be read ({type(exc).__name__})") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("jwks_uri"), str):
            raise Unavailable(f"{url} is not a discovery document (no jwks_uri)")
        if doc.get("issuer") != self.config.issuer:
            raise Unavailable(f"{url} names issuer {str(doc.get('issuer'))[:100]!r}, not the "
                              f"configured {self.config.issuer!r}")
        return doc

    def authorization_uri(self) -> str:
        """Where clients sign in (Power Query reads it from the 401 challenge)."""
        if self.config.authorization_uri:
            return self.config.authorization_uri
        try:
            return str(self.discovery().get("authorization_endpoint") or "")
        except Unavailable:
            return ""

    def published_keys(self) -> list[jwt.PyJWK]:
        """The issuer's signing keys now (fetched afresh: for ``scorebridge auth check``)."""
        self.discovery()
        assert self._keys is not None
        try:
            return self._keys.get_signing_keys(refresh=True)
        except jwt.PyJWKClientConnectionError:
            raise Unavailable("the identity provider's signing keys could not be read") from None
        except (jwt.PyJWKClientError, jwt.PyJWKSetError) as exc:
            raise Unavailable(f"the issuer's key set is not usable: {exc}") from None

    def _signing_key(self, kid: str) -> jwt.PyJWK:
        self.discovery()
        assert self._keys is not None
        try:
            return self._keys.get_signing_key(kid)
        except jwt.PyJWKClientConnectionError:
            raise Unavailable("the identity provider's signing keys could not be read") from None
        except jwt.PyJWKClientError:
            raise TokenRejected("the token is signed with a key the issuer does not publish "
                                "(unknown kid)") from None

    # -- tokens ------------------------------------------------------------------------------------

    def verify(self, token: str) -> Principal:
        """The person a valid access token names, with the scopes its claims map to; else
        :class:`TokenRejected` (or :class:`Unavailable` when the issuer cannot be reached)."""
        return self.principal(self.decode(token, self.config.audiences))

    def decode(self, token: str, audiences: tuple[str, ...]) -> dict[str, Any]:
        """The claims of a token the issuer signed for one of ``audiences`` (the API's for
        access tokens; the client's for the ID token of a browser sign-in)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRejected("the bearer token is not a well-formed JWT") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in self.config.algorithms:
            raise TokenRejected(f"the token's algorithm {str(alg)[:20]!r} is not accepted; "
                                f"accepted: {', '.join(self.config.algorithms)}")
        if str(header.get("typ", "")).lower() not in _TYPES:
            raise TokenRejected("the token's type is not an access token")
        if not isinstance(kid, str) or not kid or len(kid) > 256:
            raise TokenRejected("the token names no signing key (kid)")
        key = self._signing_key(kid)
        declared = key._jwk_data.get("alg")  # a key published for one algorithm only
        if key.key_type != _KEY_TYPE[alg[:2]] or (declared and declared != alg):
            raise TokenRejected("the token's algorithm does not fit the issuer's key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key.key, algorithms=[alg], audience=list(audiences),
                issuer=self.config.issuer, leeway=self.config.leeway_seconds,
                options={"require": ["exp", "iss", "aud", "sub"]})
            return claims
        except jwt.ExpiredSignatureError:
            raise TokenRejected("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenRejected("the token is not valid yet (nbf or iat in the future)") from None
        except jwt.InvalidAudienceError:
            raise TokenRejected("the token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise TokenRejected("the token is from another issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenRejected(f"the token lacks the {exc.claim!r} claim") from None
        except jwt.InvalidSignatureError:
            raise TokenRejected("the token's signature does not verify") from None
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"the token is not valid ({type(exc).__name__})") from None

    def principal(self, claims: dict[str, Any]) -> Principal:
        name = claims.get(self.config.name_claim) or claims.get("name") \
            or claims.get("preferred_username") or ""
        email = claims.get("email") or claims.get("upn") or ""
        return Principal(kind="person", id=str(claims["sub"])[:256], name=str(name)[:200],
                         email=str(email)[:200], issuer=self.config.issuer,
                         scopes=mapped_scopes(claims, self.config.scope_map),
                         models=mapped_models(claims, self.config.models_claim),
                         expires_at=datetime.fromtimestamp(int(claims["exp"]), timezone.utc))


def build_verifier(settings: Settings) -> TokenVerifier | None:
    config = OidcConfig.from_settings(settings)
    return TokenVerifier(config) if config else None
