"""The one per-process cache helper: bounded, least recently used first out, shared by threads."""

import threading

import pytest

from trellis.tracking.memo import Memo


def test_forgets_the_least_recently_used_first():
    memo = Memo(2)
    memo.put("a", 1)
    memo.put("b", 2)
    assert memo.get("a") == 1  # a used: b is now the oldest
    memo.put("c", 3)
    assert "b" not in memo and memo.get("a") == 1 and memo.get("c") == 3 and len(memo) == 2
    assert memo.peek("a") == 1 and memo.get("zz", "none") == "none"
    memo.put("d", 4)  # peek did not count as a use: a went first after c was used
    assert "a" not in memo


def test_threads_share_it_within_its_bound():
    memo = Memo(50)

    def fill(start):
        for i in range(start, start + 500):
            memo.put(i, i)
            assert memo.get(i, i) == i  # read back (or already forgotten by another thread's puts)

    threads = [threading.Thread(target=fill, args=(k * 1000,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(memo) == 50
    with pytest.raises(ValueError):
        Memo(0)
