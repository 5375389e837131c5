"""Callback answers shared between users viewing the same runs in the same state.

A team looking at one experiment sends the same callback requests (the same inputs and states, byte for
byte: the renderer serialises them the same way). For the read-only callbacks of the overview and the
search-space pages the answer is a function of the request body, the runs it reads and who may read them,
so a worker answers a repeated request from memory. The key is the body, the experiments the user may read
among those chosen, the store's fingerprint of them and the worker's run-cache entry they were read from
(``AppContext.data_state``: a run added, ended or logging is another state). Nothing is kept for a store
without a fingerprint (an http tracking server), and an answer is kept only when the state is the same
after it was computed (no store change or outage during the request). Per process, bounded in bytes
(``TRELLIS_RESPONSE_CACHE_MB``, default 64; 0 turns it off).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterable

from flask import Flask, Response, g, request

from trellis.app.context import AppContext
from trellis.tracking.memo import Memo

log = logging.getLogger(__name__)
UPDATE_PATH = "/_dash-update-component"


def _megabytes() -> float:
    try:
        return max(0.0, float(os.environ.get("TRELLIS_RESPONSE_CACHE_MB", "64")))
    except ValueError:
        return 64.0


class ResponseCache:
    def __init__(self, context: AppContext, max_bytes: int | None = None) -> None:
        self.context = context
        self.max_bytes = int(_megabytes() * 2**20) if max_bytes is None else max_bytes
        self.allowed: set[str] = set()
        # (status, body) by request key, bounded in bytes (the entry bound is never the one reached first)
        self._entries: Memo[tuple[int, bytes]] = Memo(1 << 20, max(1, self.max_bytes), lambda entry: len(entry[1]))
        self._lock = threading.Lock()
        self.stats = {"hits": 0, "misses": 0, "kept": 0}

    def allow(self, outputs: Iterable[str]) -> None:
        """Callbacks (by their output key in ``app.callback_map``) whose answers may be shared: read-only ones
        that read runs only through the ``selection`` store's experiments."""
        self.allowed.update(outputs)

    def install(self, server: Flask) -> None:
        """After sign-in (registered later than the auth hooks): nothing is answered to a user not signed in."""
        if self.max_bytes <= 0:
            return
        server.before_request(self._before)
        server.after_request(self._after)

    def key(self) -> str | None:
        """The cache key of the callback request being served, or None when its answer is not shared."""
        if not request.path.endswith(UPDATE_PATH) or request.method != "POST":
            return None
        body = request.get_json(silent=True)  # Flask keeps it: Dash's dispatch reads the same parse
        if not isinstance(body, dict) or body.get("output") not in self.allowed:
            return None
        experiments = _selection_experiments(body)
        if experiments is None:
            return None
        ids = sorted(self.context.readable_ids(experiments))
        try:
            state = self.context.data_state(ids)
        except Exception:  # a store that does not answer: the callback runs and says so, nothing is kept
            return None
        if state is None or state[-1] is None:  # no fingerprint, or this worker has not read these runs yet
            return None
        digest = hashlib.sha256(request.get_data(cache=True))
        digest.update(json.dumps(list(state), default=str).encode())
        return digest.hexdigest()

    def _before(self):
        try:
            key = self.key()
        except Exception as exc:  # never fail a request over the cache: it is served as if there were none
            log.warning("response cache: skipped (%s)", exc)
            return None
        if key is None:
            return None
        found = self._entries.get(key)
        if found is not None:
            with self._lock:
                self.stats["hits"] += 1
            status, data = found
            return Response(data, status=status, mimetype="application/json")
        self.stats["misses"] += 1
        g.trellis_response_key = key
        return None

    def _after(self, response: Response) -> Response:
        key = g.pop("trellis_response_key", None)
        if key is None or response.status_code not in (200, 204) or response.direct_passthrough:
            return response
        if response.headers.get("Set-Cookie"):
            return response
        try:
            g.pop("trellis_fingerprints", None)  # ask the store again: kept only if nothing changed meanwhile
            if self.key() != key:
                return response
        except Exception:
            return response
        data = response.get_data()
        if len(data) > self.max_bytes // 4 or b'"sideUpdate"' in data:
            return response  # too big, or it set other props (the status line of a store outage): not kept
        if key not in self._entries:
            self._entries.put(key, (response.status_code, data))
            with self._lock:
                self.stats["kept"] += 1
        return response


def not_shared() -> None:
    """Called by a callback whose answer must not be kept for others (a progress line: it is stale at once)."""
    g.pop("trellis_response_key", None)


def _selection_experiments(body: dict) -> list[str] | None:
    """The experiments of the ``selection`` store among a callback's inputs and states; None when it has none
    or they are malformed (such a request is not shared)."""
    for item in [*(body.get("inputs") or []), *(body.get("state") or [])]:
        if isinstance(item, dict) and item.get("id") == "selection" and item.get("property") == "data":
            value = item.get("value")
            if not isinstance(value, dict):
                return None
            experiments = value.get("experiments") or []
            if not isinstance(experiments, list) or not all(isinstance(e, str | int) for e in experiments):
                return None
            return [str(e) for e in experiments]
    return None


def register_shared(app, register, *args) -> None:
    """Run ``register(app, *args)``; the callbacks it adds may share their answers (see ``ResponseCache``)."""
    before = set(app.callback_map)
    register(app, *args)
    shared = getattr(app, "trellis_shared_outputs", set())
    app.trellis_shared_outputs = shared | (set(app.callback_map) - before)


def install_response_cache(app, context: AppContext) -> ResponseCache:
    """The cache for the callbacks the pages registered with ``register_shared``; last, after sign-in."""
    cache = ResponseCache(context)
    cache.allow(getattr(app, "trellis_shared_outputs", set()))
    cache.install(app.server)
    return cache
