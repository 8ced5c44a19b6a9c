"""gunicorn settings used by ``scorebridge serve``.

Threaded workers (gthread): scoring releases the GIL inside numpy and scikit-learn, and the threads
share one model cache per worker. The access log leaves out query strings, so API keys passed as
``api_key`` (Power BI, WEBSERVICE) are never written to disk.

Each worker listens on its own socket (``reuse_port``: SO_REUSEPORT, one socket per worker, which
gunicorn opens in the worker): the kernel then spreads new connections evenly over the workers.
On one shared socket whichever worker called accept() first won, and kept-alive clients (the
Excel add-in, Power BI, connection pools) stayed where they landed: 32 connections from a load
generator were split 1/31 or 32/0 as often as 16/16, leaving a core idle (docs/performance.md).

No control socket (gunicorn 25.1+, for ``gunicornc``): by default every gunicorn of the user opens
the same ``$XDG_RUNTIME_DIR/gunicorn.ctl`` or ``~/.gunicorn/gunicorn.ctl``: a second server (or
any other project's gunicorn) unlinks the first one's socket to bind its own, and whichever stops
first deletes it. Nothing here uses it.
"""
import gc
import os

worker_class = "gthread"
# SCOREBRIDGE_REUSE_PORT=off: one socket shared by the workers (what a worker's death costs
# with each: docs/reliability.md)
reuse_port = os.environ.get("SCOREBRIDGE_REUSE_PORT", "on").strip().lower() not in (
    "off", "0", "false", "no")
timeout = 120
graceful_timeout = 30
keepalive = 5
accesslog = "-"
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms rid=%({x-request-id}o)s'
logger_class = "server.access_log.AccessLogger"  # the same lines, built for less CPU
control_socket_disable = True


def when_ready(server):
    """gunicorn's own "Listening at" line is empty when the workers open the sockets."""
    scheme = "https" if server.cfg.is_ssl else "http"
    server.log.info("Listening at: %s (%s)",
                    ", ".join(f"{scheme}://{address}" for address in server.cfg.bind),
                    "a socket per worker" if server.cfg.reuse_port else "one shared socket")


def child_exit(server, worker):
    """A worker is gone: its live gauges must not count any more."""
    from server.metrics import worker_exited

    worker_exited(worker.pid)


def post_worker_init(worker):
    """The worker's application is loaded; before it serves:

    - under ``--preload`` it was built in the master, so the worker must not reuse the master's
      database connections (SQLAlchemy's advice for forking);
    - the garbage collector stops re-scanning what start-up created (libraries, the app) and
      runs young collections less often: a 10,000-row JSON body makes ~70,000 objects, and the
      default settings spent more time collecting than parsing it (docs/performance.md).
    """
    if worker.cfg.preload_app:
        worker.wsgi.extensions["scorebridge"].registry.engine.dispose(close=False)
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
