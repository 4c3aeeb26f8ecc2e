"""explorer.lru.SharedLRU: bounded, least recently used out first, safe across threads."""
import threading

import pytest

from explorer.lru import SharedLRU


def test_the_least_recently_used_entry_goes_first():
    cache = SharedLRU(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recently used
    cache.put("c", 3)
    assert "b" not in cache and cache.get("a") == 1 and cache.get("c") == 3
    assert len(cache) == 2


def test_get_or_compute_computes_once_and_keeps_none():
    cache, calls = SharedLRU(4), []

    def compute():  # None, "nothing stored", is an answer worth keeping
        calls.append(1)

    assert cache.get_or_compute("k", compute) is None
    assert cache.get_or_compute("k", compute) is None
    assert len(calls) == 1


def test_a_failed_computation_keeps_nothing():
    cache = SharedLRU(4)
    with pytest.raises(ZeroDivisionError):
        cache.get_or_compute("k", lambda: 1 / 0)
    assert "k" not in cache
    assert cache.get_or_compute("k", lambda: 5) == 5


def test_threads_never_exceed_the_bound():
    cache = SharedLRU(8)

    def fill(offset):
        for i in range(500):
            cache.put((offset, i), i)
            cache.get((offset, i - 1))

    threads = [threading.Thread(target=fill, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) == 8


def test_a_size_below_one_is_refused():
    with pytest.raises(ValueError, match="at least one entry"):
        SharedLRU(0)
