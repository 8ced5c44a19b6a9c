"""``scorebridge auth check`` against a real OpenID provider."""
from __future__ import annotations

import json
import time

from click.testing import CliRunner

from server.cli import main


def _check(provider, *args, **env):
    settings = {"SCOREBRIDGE_OIDC_ISSUER": provider.issuer,
                "SCOREBRIDGE_OIDC_AUDIENCE": provider.audience, **env}
    return CliRunner().invoke(main, ["auth", "check", *args], env=settings)


def test_a_sound_configuration(provider):
    result = _check(provider)
    assert result.exit_code == 0, result.output
    assert "configuration OK" in result.output and provider.kid in result.output
    assert f"{provider.issuer}/auth" in result.output  # where Power Query will sign in


def test_what_a_token_maps_to(provider):
    result = _check(provider, "--token", provider.token("grouped"), "--json",
                    SCOREBRIDGE_OIDC_SCOPE_MAP="groups:sb-analysts=score+read")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["token"]["actor"] == "user:grouped (Gus Grouped)"
    assert report["token"]["grants"] == ["read", "score"]
    assert report["scope_map"] == {"groups": {"sb-analysts": ["score", "read"]}}
    text = _check(provider, "--token", provider.token("analyst"))
    assert "user:analyst (Ada Analyst): scopes read, score" in text.output


def test_a_refused_token_says_why(provider):
    expired = provider.sign(exp=int(time.time()) - 3600)
    result = _check(provider, "--token", expired)
    assert result.exit_code == 1 and "token refused: the token has expired" in result.output


def test_mistakes_show_at_set_up(provider):
    # an issuer spelled differently from what the provider calls itself
    result = _check(provider, SCOREBRIDGE_OIDC_ISSUER=provider.issuer + "/")
    assert result.exit_code == 1 and "names issuer" in result.output
    # accepted algorithms that no published key can verify
    result = _check(provider, SCOREBRIDGE_OIDC_ALGORITHMS="ES256")
    assert result.exit_code == 1 and "no published key" in result.output
    result = _check(provider, SCOREBRIDGE_OIDC_ALGORITHMS="HS256")
    assert result.exit_code == 1 and "HS256 not allowed" in result.output
    result = CliRunner().invoke(main, ["auth", "check"], env={"SCOREBRIDGE_OIDC_ISSUER": ""})
    assert result.exit_code == 1 and "not configured" in result.output
