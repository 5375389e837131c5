"""Argument types and checks the commands share: a bad value is one clear line, never a traceback."""

from __future__ import annotations

import argparse
import sys

from trellis.tracking.uris import store_problem


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def fraction(text: str) -> float:
    """A number in (0, 1]: a share of the runs."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1], got {text!r}") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {value}")
    return value


def store_ok(uri: str, must_exist: bool) -> bool:
    """Print why the store cannot be used, if it cannot; ``must_exist`` for commands that only read."""
    problem = store_problem(uri, must_exist=must_exist)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
    return problem is None


def read_experiment(uri: str, name: str):
    """The ``RunTable`` of experiment ``name`` in the store at ``uri`` (which must exist), or None after printing
    the one line that says what is wrong (the store, or which experiments there are)."""
    from mlflow import MlflowClient

    from trellis.tracking.reader import read_runs

    if not store_ok(uri, must_exist=True):
        return None
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(name)
    if exp is None:
        names = ", ".join(sorted(e.name for e in client.search_experiments())) or "none"
        print(f"error: no experiment {name!r} at {uri} (have: {names})", file=sys.stderr)
        return None
    return read_runs(uri, [exp.experiment_id])
