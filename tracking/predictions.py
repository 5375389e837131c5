"""Held-out predictions a trial kept as an artifact (``trial/predictions.json``: ``{"predicted": [...],
"labels": [...]}``, written by ``trellis.examples.arch_training``), read as plain JSON (nothing read can run code),
memoised per run: a finished run's artifacts do not change."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from mlflow import MlflowClient

from trellis.tracking.memo import Memo

PATH = "trial/predictions.json"
MAX_VALUES = 1_000_000  # a bigger file is not a small model's held-out set: refused, not parsed
MEMO = 2048
READ_THREADS = 8


class PredictionsReader:
    """``client_of``: gives the MLflow client when a read happens (the app's is made on first use)."""

    def __init__(self, client_of: Callable[[], MlflowClient]) -> None:
        self.client_of = client_of
        self._memo: Memo[tuple[np.ndarray, np.ndarray]] = Memo(MEMO)

    def get(self, run_id: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(predicted, labels) of the run, or None when it kept none (or they do not read as predictions)."""
        kept = self._memo.get(run_id)
        if kept is not None:
            return kept
        found = self._read(run_id)
        if found is None:  # not written yet (a running trial), or never: asked again next time
            return None
        self._memo.put(run_id, found)
        return found

    def get_many(self, run_ids: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray] | None]:
        """``get`` for many runs, the reads not yet memoised done by a few threads at once (each is a store
        round trip: a file copy, or an HTTP request to an MLflow server)."""
        with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
            return dict(zip(run_ids, pool.map(self.get, run_ids), strict=True))

    def _read(self, run_id: str) -> tuple[np.ndarray, np.ndarray] | None:
        try:
            with tempfile.TemporaryDirectory() as folder:
                path = self.client_of().download_artifacts(run_id, PATH, folder)
                if os.path.getsize(path) > MAX_VALUES * 8:
                    return None
                with open(path, encoding="utf-8") as fh:
                    raw = json.load(fh)
        except Exception:  # no such artifact, or a store hiccup: the model has no predictions to show
            return None
        return parse_predictions(raw)


def parse_predictions(raw) -> tuple[np.ndarray, np.ndarray] | None:
    """Two equal-length lists of class indices, or None."""
    if not isinstance(raw, dict):
        return None
    try:
        predicted = np.asarray(raw.get("predicted"), dtype=np.int64)
        labels = np.asarray(raw.get("labels"), dtype=np.int64)
    except (TypeError, ValueError):
        return None
    if predicted.ndim != 1 or predicted.shape != labels.shape or not len(labels) or predicted.min() < 0:
        return None
    return predicted, labels
