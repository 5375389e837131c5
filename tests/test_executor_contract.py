"""The executor contract (``trellis.testing.ExecutorContract``) on the local executor (Dask has its own tests:
a cluster is slow to start)."""

from trellis.testing import ExecutorContract


class TestLocalExecutor(ExecutorContract):
    executor = "local"
