"""Sign-in: ``auth check`` validates the OpenID configuration against the issuer and shows what a
token maps to."""
from __future__ import annotations

import sys

import click
from rich.table import Table

from ..auth.tokens import OidcConfig, TokenRejected, TokenVerifier
from ..config import Settings
from .common import (
    backend,
    console,
    err_console,
    handle_errors,
    json_option,
    key_option,
    main,
    print_json,
    url_option,
)


@main.group()
def auth() -> None:
    """Sign-in with the organisation's identity provider (OpenID Connect)."""


@auth.command("check")
@click.option("--token", default=None,
              help="An access token to verify and map to scopes ('-' reads it from stdin).")
@json_option
@handle_errors
def auth_check(token: str | None, as_json: bool) -> None:
    """Check SCOREBRIDGE_OIDC_* against the issuer; with --token, show who it names."""
    from ..auth.check import check_issuer

    config = OidcConfig.from_settings(Settings.from_env())
    if config is None:
        err_console.print("sign-in is not configured (set SCOREBRIDGE_OIDC_ISSUER and "
                          "SCOREBRIDGE_OIDC_AUDIENCE); API keys only")
        sys.exit(1)
    verifier = TokenVerifier(config)
    report = check_issuer(verifier)
    if token == "-":
        token = sys.stdin.read().strip()
    if token:
        try:
            report["token"] = verifier.verify(token).public()
        except TokenRejected as exc:
            report["token"] = {"refused": exc.detail}
    if as_json:
        print_json(report)
    else:
        _print(report)
    refused = "refused" in report.get("token", {})
    sys.exit(1 if report["problems"] or refused else 0)


def _print(report: dict) -> None:
    console.print(f"issuer        {report['issuer']} (discovery document read)", highlight=False)
    console.print(f"audience      {', '.join(report['audiences'])}", highlight=False)
    console.print(f"keys          {report['jwks_uri']}: "
                  + ", ".join(f"{k['kid']} ({k['kty']}{', ' + k['alg'] if k['alg'] else ''})"
                              for k in report["keys"]), highlight=False)
    console.print(f"algorithms    {', '.join(report['algorithms'])}", highlight=False)
    console.print(f"sign-in at    {report['authorization_uri'] or '-'}", highlight=False)
    mapping = "; ".join(f"{claim}:{value}={'+'.join(scopes)}"
                        for claim, values in report["scope_map"].items()
                        for value, scopes in values.items())
    console.print(f"scope map     scope/scp values naming a scope{'; ' + mapping if mapping else ''}",
                  highlight=False)
    console.print(f"models claim  {report['models_claim'] or '- (every model)'}", highlight=False)
    for problem in report["problems"]:
        err_console.print(f"[red]problem:[/red] {problem}", highlight=False)
    token = report.get("token")
    if token and "refused" in token:
        err_console.print(f"[red]token refused:[/red] {token['refused']}", highlight=False)
    elif token:
        console.print(f"token         {token['actor']}: scopes {', '.join(token['grants']) or 'none'}"
                      + (f", models {', '.join(token['models'])}" if token["models"] is not None
                         else ""), highlight=False)
    if not report["problems"]:
        console.print("configuration OK", highlight=False)


@auth.command("disable")
@click.argument("subject")
@click.option("--reason", default="", help="Why, for the audit trail.")
@url_option
@key_option
@handle_errors
def auth_disable(subject: str, reason: str, url: str | None, key: str | None) -> None:
    """Refuse SUBJECT's sign-in tokens here from now on (every host within seconds), before they
    expire at the issuer."""
    backend(url, key).disable_person(subject, reason)
    console.print(f"disabled {subject}", highlight=False)


@auth.command("enable")
@click.argument("subject")
@url_option
@key_option
@handle_errors
def auth_enable(subject: str, url: str | None, key: str | None) -> None:
    """Accept SUBJECT's sign-in tokens again."""
    backend(url, key).enable_person(subject)
    console.print(f"enabled {subject}", highlight=False)


@auth.command("disabled")
@url_option
@key_option
@handle_errors
def auth_disabled(url: str | None, key: str | None) -> None:
    """List the people whose sign-in is refused here."""
    table = Table("subject", "disabled", "by", "reason")
    for p in backend(url, key).disabled_people():
        table.add_row(p["subject"], (p["disabled_at"] or "")[:19], p["disabled_by"], p["reason"])
    console.print(table)
