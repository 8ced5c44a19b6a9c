"""API key administration over HTTP (admin scope), for the CLI's remote mode, and who the caller is."""
from __future__ import annotations

from typing import Literal

from flask import Blueprint, Response
from pydantic import Field

from .auth import actor, current_key, requires, signed_in
from .declare import Inputs, Parameters
from .http import json_response, services
from .openapi import json_content, operation, problem_response

bp = Blueprint("keys", __name__, url_prefix="/api/v1/keys")
whoami_bp = Blueprint("whoami", __name__)
people_bp = Blueprint("people", __name__, url_prefix="/api/v1/people")


class KeyCreate(Inputs):
    scopes: list[Literal["score", "read", "deploy", "admin"]] = Field(min_length=1,
                                                                        max_length=4)
    name: str = Field("", max_length=128, description="who or what the key is for")


class KeyPath(Parameters):
    key_id: str = Field(max_length=32, description="the key's id (its public part)")


@bp.get("")
@requires("admin")
@operation("List API keys (never their secrets)", tags=["keys"],
           responses={"200": json_content("KeyList")})
def list_keys() -> Response:
    return json_response({"keys": [k.public() for k in services().keys.list()]})


@bp.post("")
@requires("admin")
@operation("Create an API key; the key is shown in this response only", tags=["keys"],
           body=KeyCreate, responses={"201": json_content("Key", "Created")})
def create_key(body: KeyCreate) -> Response:
    plain, info = services().create_key(list(body.scopes), body.name,
                                         actor=actor())
    return json_response({**info.public(), "key": plain}, 201)


@bp.delete("/<key_id>")
@requires("admin")
@operation("Revoke an API key", tags=["keys"], path=KeyPath,
           responses={"200": json_content("Key"), "404": problem_response("No such key")})
def revoke_key(key_id: str) -> Response:
    return json_response(services().revoke_key(key_id, actor=actor()).public())


@whoami_bp.get("/api/v1/whoami")
@signed_in
@operation("Who the caller is (an API key or a signed-in person) and with which scopes",
           tags=["keys"], responses={"200": json_content("Whoami")})
def whoami() -> Response:
    return json_response(current_key().public())


class PersonPath(Parameters):
    subject: str = Field(min_length=1, max_length=255,
                         description="the person's subject (the token's sub claim)")


class DisableRequest(Inputs):
    reason: str = Field("", max_length=500, description="why, for the audit trail")


@people_bp.get("/disabled")
@requires("admin")
@operation("People whose sign-in is refused here", tags=["keys"],
           responses={"200": json_content("DisabledPeople"),
                      "422": problem_response("Sign-in is not configured")})
def disabled_people() -> Response:
    return json_response({"people": [p.public() for p in services().disabled_people()]})


@people_bp.put("/disabled/<subject>")
@requires("admin")
@operation("Refuse a person's sign-in tokens from now on (every host within seconds)",
           tags=["keys"], path=PersonPath, body=DisableRequest, body_required=False,
           responses={"200": json_content("DisabledPerson"),
                      "422": problem_response("Sign-in is not configured")})
def disable_person(subject: str, body: DisableRequest) -> Response:
    info = services().disable_person(subject, reason=body.reason, actor=actor())
    return json_response(info.public())


@people_bp.delete("/disabled/<subject>")
@requires("admin")
@operation("Accept a disabled person's sign-in again", tags=["keys"], path=PersonPath,
           responses={"204": {"description": "Enabled"},
                      "404": problem_response("The person is not disabled"),
                      "422": problem_response("Sign-in is not configured")})
def enable_person(subject: str) -> Response:
    services().enable_person(subject, actor=actor())
    return Response(status=204)
