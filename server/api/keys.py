"""API key administration over HTTP (admin scope), for the CLI's remote mode."""
from __future__ import annotations

from flask import Blueprint, Response

from ..errors import MalformedRequest
from .auth import requires
from .http import json_body, json_response, services
from .openapi import json_content, operation, problem_response

bp = Blueprint("keys", __name__, url_prefix="/api/v1/keys")


@bp.get("")
@requires("admin")
@operation("List API keys (never their secrets)", tags=["keys"],
           responses={"200": json_content("KeyList")})
def list_keys() -> Response:
    return json_response({"keys": [k.public() for k in services().keys.list()]})


@bp.post("")
@requires("admin")
@operation("Create an API key; the key is shown in this response only", tags=["keys"],
           request_body={"required": True, "content": {"application/json": {
               "schema": {"$ref": "#/components/schemas/KeyCreate"}}}},
           responses={"201": json_content("Key", "Created"),
                      "400": problem_response("Malformed request"),
                      "422": problem_response("Unknown scope")})
def create_key() -> Response:
    body = json_body()
    if not isinstance(body, dict) or not isinstance(body.get("scopes"), list) \
            or not all(isinstance(s, str) for s in body["scopes"]):
        raise MalformedRequest("send {\"scopes\": [\"score\", ...], \"name\": \"...\"}")
    name = body.get("name", "")
    if not isinstance(name, str) or len(name) > 128:
        raise MalformedRequest("'name' must be a string of at most 128 characters")
    plain, info = services().keys.create(body["scopes"], name)
    return json_response({**info.public(), "key": plain}, 201)


@bp.delete("/<key_id>")
@requires("admin")
@operation("Revoke an API key", tags=["keys"],
           responses={"200": json_content("Key"), "404": problem_response("No such key")})
def revoke_key(key_id: str) -> Response:
    return json_response(services().keys.revoke(key_id[:32]).public())
