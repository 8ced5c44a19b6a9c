"""``scorebridge auth check``: is the sign-in configuration sound against the real issuer?

Reads the pinned issuer's discovery document and key set and reports what would make every token
fail (no key usable with the accepted algorithms, an issuer that names itself differently), so a
mistake shows at set-up rather than as 401s for every person."""
from __future__ import annotations

from typing import Any

from .tokens import _KEY_TYPE, TokenVerifier


def check_issuer(verifier: TokenVerifier) -> dict[str, Any]:
    """The configuration as the issuer sees it, with ``problems`` (empty when sound); raises
    :class:`~server.errors.Unavailable` when the issuer cannot be read."""
    config = verifier.config
    doc = verifier.discovery()
    keys = verifier.published_keys()
    described = []
    usable = 0
    for key in keys:
        declared = key._jwk_data.get("alg")
        fits = [a for a in config.algorithms
                if _KEY_TYPE[a[:2]] == key.key_type and declared in (None, a)]
        usable += bool(fits)
        described.append({"kid": key.key_id, "kty": key.key_type, "alg": declared,
                          "usable_with": fits})
    problems = []
    if not usable:
        problems.append("no published key can verify tokens with the accepted algorithms "
                        f"({', '.join(config.algorithms)})")
    if not config.authorization_uri and not doc.get("authorization_endpoint"):
        problems.append("the discovery document names no authorization_endpoint: Power Query "
                        "cannot discover where to sign in (set SCOREBRIDGE_OIDC_AUTHORIZATION_URI)")
    return {"issuer": config.issuer, "audiences": list(config.audiences),
            "jwks_uri": doc["jwks_uri"],
            "authorization_uri": config.authorization_uri or doc.get("authorization_endpoint"),
            "token_endpoint": doc.get("token_endpoint"), "algorithms": list(config.algorithms),
            "keys": described,
            "scope_map": {claim: {v: list(s) for v, s in values.items()}
                          for claim, values in config.scope_map.items()},
            "models_claim": config.models_claim or None, "problems": problems}
