"""gunicorn in production, behind nginx: `gunicorn -c deploy/gunicorn.conf.py wsgi:app`."""

import multiprocessing
import os

bind = os.environ.get("SAFEGRID_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("SAFEGRID_WEB_WORKERS", multiprocessing.cpu_count() * 2))
# gevent: a connection waiting on a slow client is a parked greenlet, not a thread, so
# slow clients cannot hold the API even where nginx does not buffer (tests/e2e/
# test_slow_clients.py). "gthread" with SAFEGRID_WEB_THREADS is the fallback.
worker_class = os.environ.get("SAFEGRID_WEB_WORKER_CLASS", "gevent")
worker_connections = int(os.environ.get("SAFEGRID_WEB_CONNECTIONS", 1000))
threads = int(os.environ.get("SAFEGRID_WEB_THREADS", 4))
# Intake must answer fast; a request slower than this is a bug or a dead store.
timeout = 30
graceful_timeout = 10
# Each worker builds its own grid snapshot: load the app in the worker, not the master,
# so MongoDB clients are never shared across fork.
preload_app = False
accesslog = "-"
# The access log must not carry query strings or paths (report codes, ids, tokens) in
# clear: %(U)s is the route template (deploy/gunicorn_logging.py), not the path.
# (the same format as deploy/processes.py's ACCESS_LOG_FORMAT)
logger_class = "deploy.gunicorn_logging.RouteLogger"
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss'
