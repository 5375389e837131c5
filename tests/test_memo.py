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


def test_a_weight_bound_forgets_the_oldest_until_the_rest_fit_and_never_keeps_a_too_heavy_value():
    memo = Memo(100, max_weight=10, weigh=len)
    memo.put("a", b"xxxx")
    memo.put("b", b"xxxx")
    assert memo.weight == 8 and memo.get("a") == b"xxxx"  # "a" is now the most recently used
    memo.put("c", b"xxxx")  # 12 > 10: the least recently used ("b") goes
    assert memo.keys() == ["a", "c"] and memo.weight == 8
    memo.put("a", b"x")  # replaced: its old weight is given back
    assert memo.weight == 5
    memo.put("big", b"x" * 11)  # heavier than the whole bound: not kept, nothing else lost
    assert "big" not in memo and memo.keys() == ["c", "a"]
    assert memo.pop("c") == b"xxxx" and memo.weight == 1
    with pytest.raises(ValueError, match="needs both"):
        Memo(3, max_weight=10)
