"""Argument types and checks the commands share: a bad value is one clear line, never a traceback."""

from __future__ import annotations

import argparse
import math
import sys

from trellis.tracking.uris import store_problem


def _whole(text: str, low: int, high: int | None, bounds: str, what: str = "a whole number") -> int:
    """``text`` as an integer in [low, high] (high None: no upper bound), else the argparse error saying so."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if value < low or (high is not None and value > high):
        raise argparse.ArgumentTypeError(f"must be {bounds}, got {value}")
    return value


def positive_int(text: str) -> int:
    return _whole(text, 1, None, "at least 1")


def trees(text: str) -> int:
    """A forest's size: 1 to ``MAX_TREES`` (said, never silently capped)."""
    value = positive_int(text)
    if value > MAX_TREES:
        raise argparse.ArgumentTypeError(f"at most {MAX_TREES} trees, got {value}")
    return value


MAX_TREES = 10_000


def experiment_name(text: str) -> str:
    from trellis.tracking.limits import experiment_name_problem

    problem = experiment_name_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(f"an experiment name {problem}")
    return text


def non_negative_int(text: str) -> int:
    return _whole(text, 0, 2**32 - 1, f"between 0 and {2**32 - 1}")


def port(text: str) -> int:
    return _whole(text, 1, 65535, "a port number from 1 to 65535", what="a port number")


def cache_spec(text: str) -> str:
    from trellis.tracking.cache import cache_spec_problem

    problem = cache_spec_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


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


def budget_argument(text: str) -> str | float:
    if text in ("auto", "all"):
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be auto, all or a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a budget of 0 or more, got {text!r}")
    return value
