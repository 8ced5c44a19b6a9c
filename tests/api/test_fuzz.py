"""Spec fuzzing: schemathesis generates requests for every operation in /openapi.json, with a
valid admin key and with none, and checks each answer: never a 5xx, a status code the spec
documents for that operation, the documented content type, and a body that matches the
documented schema. Bounded: a few examples per operation, no deadline per example."""
from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
EXAMPLES = 10


def buffered(wsgi_app: Any) -> Any:
    """The app with each response read whole and closed, as a WSGI server does: schemathesis'
    WSGI client never closes a streamed body (a file a view sent), a ResourceWarning each."""
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = wsgi_app(environ, start_response)
        try:
            return [b"".join(body)]
        finally:
            if hasattr(body, "close"):
                body.close()
    return app


@pytest.fixture(scope="module")
def fuzzed(deployed: tuple[Any, str]) -> tuple[Any, str]:
    app, _ = deployed
    app.wsgi_app = buffered(app.wsgi_app)
    return deployed


BOUNDED = hypothesis_settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                              database=None, suppress_health_check=list(HealthCheck))


def fuzz(app: Any, headers: dict[str, str]) -> list[str]:
    """Every operation of the app's spec, fuzzed with valid and with invalid inputs; the
    failures, one line each."""
    failures = []
    operations = 0
    for result in schemathesis.openapi.from_wsgi("/openapi.json", app).get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=st.one_of(operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
                              operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)))
        @BOUNDED
        def run(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - report every operation
            failures.append(f"{operation.label}: " + " / ".join(
                line.strip() for line in str(exc).strip().splitlines()[:7])[:500])
    assert operations > 30, operations
    return failures


def test_every_operation_with_a_key(fuzzed: Any) -> None:
    app, key = fuzzed
    failures = fuzz(app, {"X-API-Key": key})
    assert not failures, "\n".join(failures)


def test_every_operation_without_a_key(fuzzed: Any) -> None:
    app, _ = fuzzed
    failures = fuzz(app, {})
    assert not failures, "\n".join(failures)


def test_stateful_sequences(fuzzed: Any) -> None:
    """Sequences of calls along the links schemathesis infers from the document (a job's id from
    its submission, a model's name from the catalogue, a key's id from its creation), so the
    later call of each pair gets a value that exists instead of a random one that is a 404."""
    app, key = fuzzed
    machine = schemathesis.openapi.from_wsgi("/openapi.json", app).as_state_machine()
    assert len(machine.bundles) > 5  # links were found: the sequences reach past the first call

    class Authenticated(machine):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": {"X-API-Key": key}}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS)

    Authenticated.run(settings=hypothesis_settings(
        max_examples=25, stateful_step_count=4, deadline=None, derandomize=True, database=None,
        suppress_health_check=list(HealthCheck)))
