"""The app's gunicorn settings for a team: ``trellis serve --workers N`` uses them, as does
``gunicorn -c PATH/TO/trellis/app/gunicorn_conf.py 'trellis.app.wsgi:server'``.

Each can be changed by an environment variable (or a gunicorn flag after ``-c``, which wins):
TRELLIS_BIND (0.0.0.0:8050), TRELLIS_WORKERS (two per core, at most 8), TRELLIS_TIMEOUT_S (120).
Sync workers: the pages are CPU-bound (figures, analysis), so processes beat threads; a worker that dies
mid-request is replaced and the next request is served by another.
"""

import multiprocessing
import os

bind = os.environ.get("TRELLIS_BIND", "0.0.0.0:8050")
workers = int(os.environ.get("TRELLIS_WORKERS", min(2 * multiprocessing.cpu_count(), 8)))
worker_class = "sync"
timeout = int(os.environ.get("TRELLIS_TIMEOUT_S", 120))  # a cold analysis of a 10k-run experiment takes seconds
graceful_timeout = 30
keepalive = 5  # browsers poll every few seconds: keep their connections
max_requests = 50000  # recycle workers now and then (bounded memory); at load-test rates 5000 recycled all four at once
max_requests_jitter = 5000  # staggered, so they never restart together
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # heartbeats off the disk
limit_request_line = 8190  # long but bounded page links (many experiment ids); past it: 414
errorlog = "-"
loglevel = os.environ.get("TRELLIS_LOG_LEVEL", "info")
