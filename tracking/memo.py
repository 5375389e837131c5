"""``Memo``: the one per-process cache helper: a bounded map that forgets the least recently used entry first,
safe to share between threads. Every in-process cache of Trellis (views, reports, diagnoses, predictions,
surrogates, run tables) is one of these with its own bound; what is shared between processes goes through the
run cache's store instead (``trellis.tracking.cache``)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, Generic, TypeVar

V = TypeVar("V")


class Memo(Generic[V]):
    def __init__(self, entries: int) -> None:
        if entries < 1:
            raise ValueError("a memo keeps at least one entry")
        self.entries = entries
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
        """Keep ``value`` under ``key``, forgetting the least recently used entries beyond the bound."""
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.entries:
                self._items.popitem(last=False)
        return value

    __setitem__ = put

    def pop(self, key: Hashable, default: Any = None) -> V | Any:
        with self._lock:
            return self._items.pop(key, default)

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
