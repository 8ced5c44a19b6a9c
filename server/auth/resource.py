"""What this API tells clients about itself as an OAuth 2.0 protected resource (RFC 9728).

Clients that know only the server's URL (Power Query's ``Aad`` kind, MCP-style clients) read the
metadata document to learn the identifier to ask tokens for (the configured audience, e.g. the
Entra App ID URI), the issuer that issues them and the scopes to ask for, instead of having
them written into the client.
"""
from __future__ import annotations

from typing import Any

from ..config import Settings

WELL_KNOWN = "/.well-known/oauth-protected-resource"


def full_scope(resource: str, scope: str) -> str:
    """A scope as clients send it to the issuer: a name relative to the resource (Entra ID's
    ``.default`` or ``score``) gets the resource in front; a value with a colon (``api://...``,
    ``urn:...``) is taken as it is."""
    return scope if ":" in scope else f"{resource.rstrip('/')}/{scope}"


def protected_resource_metadata(settings: Settings) -> dict[str, Any] | None:
    """The metadata document, or None when sign-in is not configured."""
    if not settings.oidc_issuer or not settings.oidc_audience:
        return None
    resource = settings.oidc_audience[0]
    return {
        "resource": resource,
        "authorization_servers": [settings.oidc_issuer],
        "scopes_supported": [full_scope(resource, s) for s in settings.oidc_resource_scopes],
        "bearer_methods_supported": ["header"],
        "resource_name": "ScoreBridge",
    }
