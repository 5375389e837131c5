"""``Memo``: the one per-process cache helper: a bounded map that forgets the least recently used entry first,
safe to share between threads. Every in-process cache of Trellis (views, reports, diagnoses, predictions,
surrogates, run tables) is one of these with its own bound; what is shared between processes goes through the
run cache's store instead (``trellis.tracking.cache``)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

V = TypeVar("V")


class Memo(Generic[V]):
    """At most ``entries`` values; with ``weigh`` (a value's size, e.g. its bytes), also at most ``max_weight``
    in all (a value heavier than that alone is not kept)."""

    def __init__(self, entries: int, max_weight: float | None = None, weigh: Callable[[V], float] | None = None):
        if entries < 1:
            raise ValueError("a memo keeps at least one entry")
        if (max_weight is None) != (weigh is None):
            raise ValueError("a weight bound needs both max_weight and weigh")
        self.entries = entries
        self.max_weight = max_weight
        self._weigh = weigh
        self.weight = 0.0
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, default: Any = None) -> V | Any:
        """The value kept under ``key`` (now the most recently used), or ``default``."""
        with self._lock:
            if key not in self._items:
                return default
            self._items.move_to_end(key)
            return self._items[key]

    def peek(self, key: Hashable, default: Any = None) -> V | Any:
        """The value kept under ``key`` without counting it as a use."""
        with self._lock:
            return self._items.get(key, default)

    def put(self, key: Hashable, value: V) -> V:
        """Keep ``value`` under ``key``, forgetting the least recently used entries beyond the bounds."""
        with self._lock:
            if self._weigh is not None and self._weigh(value) > self.max_weight:
                self._forget(key)
                return value
            self._forget(key)
            self._items[key] = value
            self.weight += self._weigh(value) if self._weigh is not None else 0.0
            while len(self._items) > self.entries or (self.max_weight is not None and self.weight > self.max_weight):
                self._forget(next(iter(self._items)))
        return value

    def _forget(self, key: Hashable) -> None:
        if key in self._items:
            old = self._items.pop(key)
            if self._weigh is not None:
                self.weight -= self._weigh(old)

    __setitem__ = put

    def pop(self, key: Hashable, default: Any = None) -> V | Any:
        with self._lock:
            found = self._items.get(key, default)
            self._forget(key)
            return found

    def keys(self) -> list[Hashable]:
        """The keys kept now, least recently used first (a copy: safe while other threads use the memo)."""
        with self._lock:
            return list(self._items)

    def __iter__(self):
        return iter(self.keys())

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.weight = 0.0
