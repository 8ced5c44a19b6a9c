"""``/.well-known/oauth-protected-resource``: this API's OAuth 2.0 protected resource metadata
(RFC 9728), public so a client can read it before it has a token (the Power BI connector takes
its ``Aad`` resource and scope from it)."""
from __future__ import annotations

from flask import Blueprint, Response

from ..auth.resource import WELL_KNOWN, protected_resource_metadata
from ..errors import NotFound
from .auth import public
from .http import json_response, services
from .openapi import json_content, operation, problem_response

bp = Blueprint("resource", __name__)


@bp.get(WELL_KNOWN)
@public
@operation("OAuth 2.0 protected resource metadata (RFC 9728): the token audience, issuer and "
           "scopes clients ask for", tags=["sign-in"],
           responses={"200": json_content("ProtectedResource"),
                      "404": problem_response("Sign-in is not configured")})
def protected_resource() -> Response:
    metadata = protected_resource_metadata(services().settings)
    if metadata is None:
        raise NotFound("sign-in is not configured here (SCOREBRIDGE_OIDC_ISSUER and "
                       "SCOREBRIDGE_OIDC_AUDIENCE): this API takes API keys only")
    return json_response(metadata)
