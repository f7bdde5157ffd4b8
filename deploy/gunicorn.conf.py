"""gunicorn in production, behind nginx: `gunicorn -c deploy/gunicorn.conf.py wsgi:app`."""

import multiprocessing
import os

bind = os.environ.get("SAFEGRID_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("SAFEGRID_WEB_WORKERS", multiprocessing.cpu_count() * 2))
# gthread behind nginx, which buffers whole requests with short read timeouts
# (deploy/nginx/safegrid.conf), so a slow client never reaches a thread; gthread serves
# intake ~1.5x faster than gevent here (docs/performance.md). Without such a proxy, run
# SAFEGRID_WEB_WORKER_CLASS=gevent, as `make run` does: a connection waiting on a slow
# client is then a parked greenlet, not a thread (tests/e2e/test_slow_clients.py).
worker_class = os.environ.get("SAFEGRID_WEB_WORKER_CLASS", "gthread")
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
# Every log line one JSON object with the request id (gateway/jsonlog.py, docs/metrics.md).
logconfig_json = os.path.join(os.path.dirname(os.path.abspath(__file__)), "logging.json")
