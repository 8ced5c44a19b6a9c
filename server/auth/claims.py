"""From a verified token's claims to ScoreBridge's scopes and models.

By default the values of ``scope`` / ``scp`` that name a ScoreBridge scope grant it (so an API that
exposes scopes called ``score`` and ``read`` works with no mapping). Roles and groups (Entra's
``roles``, Okta's and Keycloak's ``groups``) grant scopes only through the mapping setting,
``SCOREBRIDGE_OIDC_SCOPE_MAP``: entries ``claim:value=scope[+scope]`` separated by ``;``, e.g.
``roles:ScoreBridge.Admin=admin; groups:analysts=score+read``.
"""
from __future__ import annotations

from typing import Any, Mapping

from ..errors import InvalidInput
from .keys import SCOPES

# claim -> value -> scopes it grants
ScopeMap = Mapping[str, Mapping[str, tuple[str, ...]]]


def parse_scope_map(text: str) -> dict[str, dict[str, tuple[str, ...]]]:
    """``roles:Admins=admin; groups:analysts=score+read`` as ``{claim: {value: scopes}}``."""
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for entry in (e.strip() for e in text.split(";")):
        if not entry:
            continue
        target, sep, scopes_text = entry.rpartition("=")
        claim, colon, value = target.partition(":")
        scopes = tuple(s.strip().lower() for s in scopes_text.replace(",", "+").split("+")
                       if s.strip())
        if not sep or not colon or not claim.strip() or not value.strip() or not scopes \
                or any(s not in SCOPES for s in scopes):
            raise InvalidInput(f"SCOREBRIDGE_OIDC_SCOPE_MAP entry {entry[:60]!r} is not "
                               "claim:value=scope[+scope] with scopes from " + ", ".join(SCOPES))
        out.setdefault(claim.strip(), {})[value.strip()] = scopes
    return out


def claim_values(claims: Mapping[str, Any], name: str) -> list[str]:
    """A claim's values as strings: a list, or a space-separated string (OAuth's ``scope``)."""
    value = claims.get(name)
    if isinstance(value, str):
        return value.split()
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str)]
    return []


def mapped_scopes(claims: Mapping[str, Any], mapping: ScopeMap) -> tuple[str, ...]:
    scopes: set[str] = set()
    for name in ("scope", "scp"):
        scopes.update(v for v in claim_values(claims, name) if v in SCOPES)
    for claim, values in mapping.items():
        for value in claim_values(claims, claim):
            scopes.update(values.get(value, ()))
    return tuple(sorted(scopes))


def mapped_models(claims: Mapping[str, Any], models_claim: str) -> frozenset[str] | None:
    """The models a person may see and score: None (all) unless per-model access is configured,
    then exactly the values of that claim (none when the claim is missing)."""
    if not models_claim:
        return None
    return frozenset(claim_values(claims, models_claim))
