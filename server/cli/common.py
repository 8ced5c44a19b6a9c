"""What every command shares: the consoles, the --url/--key/--json options, the backend a
command calls, one-line errors, and the ``scorebridge`` group itself."""
from __future__ import annotations

import json
import sys
from typing import Any, Callable

import click
from rich.console import Console

from ..clients import Backend, LocalBackend, RemoteBackend
from ..config import Settings
from ..errors import ScoreBridgeError

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

url_option = click.option("--url", envvar="SCOREBRIDGE_URL", default=None,
                          help="A ScoreBridge server; without it, the local registry is used.")
key_option = click.option("--key", envvar="SCOREBRIDGE_API_KEY", default=None,
                          help="API key for --url (default: $SCOREBRIDGE_API_KEY).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def backend(url: str | None, key: str | None) -> Backend:
    return RemoteBackend(url, key) if url else LocalBackend(Settings.from_env())


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Problems become a one-line message and exit code 1, never a traceback."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ScoreBridgeError as exc:
            err_console.print(f"[red]error:[/red] {exc.detail}", highlight=False)
            for e in exc.errors[:20]:
                where = " ".join(filter(None, [f"row {e.row}" if e.row is not None else "",
                                               f"column {e.column}" if e.column else ""]))
                err_console.print(f"  {where}: {e.message}", highlight=False)
            sys.exit(1)
    return wrapper


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@click.group()
@click.version_option(package_name="scorebridge")
def main() -> None:
    """ScoreBridge: serve scikit-learn models to Excel, Power BI and HTTP apps."""
