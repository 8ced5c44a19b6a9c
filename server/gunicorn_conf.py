"""gunicorn settings used by ``scorebridge serve``.

Threaded workers (gthread): scoring releases the GIL inside numpy and scikit-learn, and the threads
share one model cache per worker. The access log leaves out query strings, so API keys passed as
``api_key`` (Power BI, WEBSERVICE) are never written to disk.
"""
worker_class = "gthread"
timeout = 120
graceful_timeout = 30
keepalive = 5
accesslog = "-"
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms rid=%({x-request-id}o)s'


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    """A worker is gone: its live gauges must not count any more."""
    from server.telemetry.metrics import worker_exited

    worker_exited(worker.pid)
