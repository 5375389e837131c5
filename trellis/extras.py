"""The optional parts of Trellis (``pip install "trellis-hpo[NAME]"``) and the one line a missing one gives.

The core (``pip install trellis-hpo``) runs random, grid, TPE, Hyperband and PBT searches, ``serve`` and
``agent`` on SQLite. Each extra below adds what its modules bring; code that needs one calls ``require``
(or ``missing``, to report it as a config problem) before it imports them, so a missing extra is said up
front, never as an ImportError deep in a worker. A leaf module: it imports nothing of Trellis.
"""

from __future__ import annotations

import importlib.util

# extra -> the top-level modules it installs that Trellis imports
EXTRAS: dict[str, tuple[str, ...]] = {
    "torch": ("torch",),
    "bohb": ("hpbandster", "ConfigSpace"),
    "dask": ("distributed",),
    "team": ("gunicorn", "redis", "psycopg", "argon2"),
    "fanova": ("fanova", "ConfigSpace"),
}
# module -> the extra that installs it (for an ImportError of a module that one of them provides)
EXTRA_OF_MODULE = {module: extra for extra, modules in reversed(EXTRAS.items()) for module in modules}


class MissingExtra(ImportError):
    """A feature whose extra is not installed; ``str()`` is the one line to show."""

    def __init__(self, feature: str, extra: str) -> None:
        self.feature, self.extra = feature, extra
        super().__init__(hint(feature, extra))


def hint(feature: str, extra: str) -> str:
    return f'{feature} needs the {extra!r} extra: pip install "trellis-hpo[{extra}]"'


def installed(module: str) -> bool:
    """Whether a top-level module can be imported (found without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing(extra: str, modules: tuple[str, ...] | None = None) -> list[str]:
    """The modules of ``extra`` (or the given subset of them) that are not installed."""
    return [m for m in (modules or EXTRAS[extra]) if not installed(m)]


def require(feature: str, extra: str, *modules: str) -> None:
    """Raise ``MissingExtra`` naming ``feature`` when ``extra`` (or the given modules of it) is missing."""
    if missing(extra, modules or None):
        raise MissingExtra(feature, extra)
