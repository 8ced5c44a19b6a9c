"""Run the connector's M code (powerbi/tools/m-eval.mjs) against the real Flask app.

The evaluator parses ``ScoreBridge.pq`` with Microsoft's parser and evaluates it; every
``Web.Contents`` it reaches comes here as one JSON line, is sent to the app exactly as built by
the M code (method, RelativePath, Query, headers, body) plus the credential Power BI adds, and the
answer goes back. The requests are recorded so tests can check what the connector sent.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlencode, urlsplit

import pytest

from tests.live import ROOT

PBI = ROOT / "powerbi"
EVALUATOR = PBI / "tools" / "m-eval.mjs"
CONNECTOR = PBI / "connector" / "ScoreBridge.pq"
RESOURCES = PBI / "connector" / "resources.resx"
BASE = "https://scorebridge.example.com"


@dataclass
class Sent:
    """One request the connector made, as the server received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    status: int
    answer: Any


@dataclass
class Run:
    result: Any = None
    error: dict[str, Any] | None = None
    sent: list[Sent] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)
    source_reads: dict[str, int] = field(default_factory=dict)

    @property
    def posts(self) -> list[Sent]:
        return [s for s in self.sent if s.method == "POST"]

    def table(self) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
        """The result table: its columns (name and type) and its rows as dicts."""
        assert self.error is None, self.error
        table = self.result["$table"]
        names = [c["name"] for c in table["columns"]]
        return table["columns"], [dict(zip(names, row)) for row in table["rows"]]


def m_table(rows: list[dict[str, Any]], types: dict[str, str], *, unstable: bool = False,
            name: str = "input") -> dict[str, Any]:
    """A table argument: typed columns, and (``unstable``) a source that answers each read in a
    new order, as a SQL query without ORDER BY may."""
    return {"$table": {"name": name, "unstable": unstable,
                       "columns": [{"name": n, "type": t} for n, t in types.items()],
                       "rows": [[r.get(n) for n in types] for r in rows]}}


Responder = Callable[[Sent], "tuple[int, dict[str, str], str] | None"]


def run_m(app_client: Any, auth: dict[str, str], call: str, *args: Any,
          intercept: Responder | None = None, timeout: float = 120,
          section: Path = CONNECTOR) -> Run:
    """Evaluate ``call(*args)`` from the connector's section document; ``intercept`` may answer
    a request itself (a 413 or 429 the test wants) instead of the app."""
    if shutil.which("node") is None or not (PBI / "tools" / "node_modules").exists():
        pytest.skip("run `make test` first (it installs Node tooling)")
    proc = subprocess.Popen(["node", str(EVALUATOR), str(section), str(RESOURCES)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT)
    assert proc.stdin and proc.stdout
    run = Run()
    try:
        proc.stdin.write(json.dumps({"call": call, "args": list(args)}) + "\n")
        proc.stdin.flush()
        while True:
            line = proc.stdout.readline()
            if not line:
                raise AssertionError("m-eval ended: " + (proc.stderr.read() if proc.stderr else ""))
            message = json.loads(line)
            if "request" in message:
                status, headers, body = _answer(app_client, auth, message["request"], run, intercept)
                proc.stdin.write(json.dumps({"status": status, "headers": headers, "body": body}) + "\n")
                proc.stdin.flush()
                continue
            if "crash" in message:
                raise AssertionError(message["crash"])
            run.result, run.error = message.get("result"), message.get("error")
            run.delays, run.source_reads = message["delays"], message["source_reads"]
            assert message["requests"] == len(run.sent)
            return run
    finally:
        proc.stdin.close()
        proc.wait(timeout=timeout)
        proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()


def _answer(app_client: Any, auth: dict[str, str], request: dict[str, Any], run: Run,
            intercept: Responder | None) -> tuple[int, dict[str, str], str]:
    base = urlsplit(request["base"])
    assert f"{base.scheme}://{base.netloc}" == BASE, request["base"]  # a fixed base URL
    path = base.path.rstrip("/") + "/" + request["relative_path"]
    query = dict(request["query"])
    body = json.loads(request["body"]) if request["body"] is not None else None
    sent = Sent(request["method"], path, query, request["headers"], body, 0, None)
    answered = intercept(sent) if intercept else None
    if answered is None:
        url = path + ("?" + urlencode([tuple(p) for p in request["query"]]) if request["query"] else "")
        # ManualCredentials: Power Query sends the request without the credential
        credential = {} if request.get("manual_credentials") else auth
        resp = app_client.open(url, method=request["method"],
                               headers={**request["headers"], **credential}, data=request["body"])
        answered = (resp.status_code, dict(resp.headers), resp.get_data(as_text=True))
    status, headers, text = answered
    sent.status = status
    try:
        sent.answer = json.loads(text)
    except ValueError:
        sent.answer = text
    run.sent.append(sent)
    return status, headers, text
