"""The lean access logger writes exactly gunicorn's lines."""
from __future__ import annotations

import datetime
from types import SimpleNamespace

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger, SafeAtoms

from server import gunicorn_conf
from server.access_log import AccessLogger


def _line(logger_class: type[Logger], fmt: str, **changes: object) -> str:
    cfg = Config()
    cfg.set("access_log_format", fmt)
    logger = logger_class(cfg)
    resp = SimpleNamespace(status="201 CREATED", sent=1234, headers=[
        ("Content-Type", "application/json"), ("X-Request-Id", 'r-"1"')])
    req = SimpleNamespace(headers=[("USER-AGENT", "curl/8"), ("X-API-KEY", "secret")])
    environ = {"REMOTE_ADDR": "10.0.0.7", "REQUEST_METHOD": "POST", "PATH_INFO": "/a/b",
               "QUERY_STRING": "api_key=secret", "RAW_URI": "/a/b?api_key=secret",
               "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_USER_AGENT": "curl/8"}
    for key, value in changes.items():
        setattr(resp, key, value)
    took = datetime.timedelta(seconds=2, microseconds=345_678)
    return fmt % SafeAtoms(logger.atoms(resp, req, environ, took))


@pytest.mark.parametrize("fmt", [
    gunicorn_conf.access_log_format,
    '%(h)s %(m)s %(U)s %(H)s %(s)s %(b)s %(B)s %(D)s %(L)s %(M)s %({user-agent}i)s '
    '%({X-Request-Id}o)s %({x-absent}o)s',
])
def test_same_line_as_gunicorn(fmt):
    assert _line(AccessLogger, fmt) == _line(Logger, fmt)
    assert _line(AccessLogger, fmt, sent=None) == _line(Logger, fmt, sent=None)
    assert _line(AccessLogger, fmt, status=404) == _line(Logger, fmt, status=404)


def test_other_formats_are_gunicorns():
    """Atoms the lean logger does not build (time of day, query, environ) fall back to gunicorn."""
    fmt = '%(t)s %(r)s %(q)s %({remote_addr}e)s %(a)s'
    assert _line(AccessLogger, fmt) == _line(Logger, fmt)
    assert "-" not in _line(AccessLogger, '%(q)s')


def test_serve_uses_it():
    assert gunicorn_conf.logger_class == "server.access_log.AccessLogger"
    # the default line names no query string: keys sent as api_key never reach the log
    assert "secret" not in _line(AccessLogger, gunicorn_conf.access_log_format)
