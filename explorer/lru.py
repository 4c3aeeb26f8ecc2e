"""A bounded cache shared by threads (the app's sessions, its worker threads): the least recently used entry
goes first. `functools.lru_cache` cannot serve where a key is computed from the arguments (an image's
content, a run's files), a value is put from elsewhere (the end of a computation in pieces), or a caller
must only look without computing."""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

_MISSING = object()


class SharedLRU:
    def __init__(self, size: int):
        if size < 1:
            raise ValueError(f"a cache holds at least one entry, got size {size}.")
        self.size = int(size)
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def get(self, key: Hashable, default=None):
        """The value under `key` (now the most recently used), else `default`."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return default

    def put(self, key: Hashable, value):
        """Keep `value` under `key`, dropping the least recently used entries beyond `size`; returns value."""
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def get_or_compute(self, key: Hashable, compute: Callable[[], Any]):
        """The value under `key`, computed by `compute()` (outside the lock: other keys stay readable) and
        kept when missing. Two threads missing the same key at once both compute it; the later one is kept."""
        found = self.get(key, _MISSING)
        return self.put(key, compute()) if found is _MISSING else found

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
