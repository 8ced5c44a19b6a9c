"""API keys: ``keys create|list|revoke``."""
from __future__ import annotations

import click
from rich.table import Table

from .common import backend, console, err_console, handle_errors, key_option, main, url_option


@main.group()
def keys() -> None:
    """Create, list and revoke API keys."""


@keys.command("create")
@click.option("--scope", "scopes", required=True,
              help="Comma-separated: score, read, deploy, admin.")
@click.option("--name", default="", help="A label, e.g. who holds the key.")
@url_option
@key_option
@handle_errors
def keys_create(scopes: str, name: str, url: str | None, key: str | None) -> None:
    """Create a key; it is printed once and cannot be shown again."""
    created = backend(url, key).create_key([s for s in scopes.split(",") if s], name)
    click.echo(created["key"])
    err_console.print(f"key id {created['id']} with scopes {', '.join(created['scopes'])}: "
                      "store it now, it cannot be shown again")


@keys.command("list")
@url_option
@key_option
@handle_errors
def keys_list(url: str | None, key: str | None) -> None:
    table = Table("id", "name", "scopes", "created", "last used", "revoked")
    for k in backend(url, key).list_keys():
        table.add_row(k["id"], k["name"], ",".join(k["scopes"]), (k["created_at"] or "")[:19],
                      (k["last_used_at"] or "")[:19], (k["revoked_at"] or "")[:19])
    console.print(table)


@keys.command("revoke")
@click.argument("key_id")
@url_option
@key_option
@handle_errors
def keys_revoke(key_id: str, url: str | None, key: str | None) -> None:
    backend(url, key).revoke_key(key_id)
    console.print(f"revoked key {key_id}")

