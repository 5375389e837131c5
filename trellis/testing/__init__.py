"""Contract suites for plugin authors, as Optuna ships ``optuna.testing``: subclass one in a test module, name
your registered algorithm or executor, and pytest runs every check Trellis' own implementations pass.

    from trellis.testing import SamplerContract, SchedulerContract, ExecutorContract

    class TestMySampler(SamplerContract):
        algorithm = "my-algorithm"          # registered with trellis.register_algorithm(...)
        settings = {"base": 3}

    class TestMyScheduler(SchedulerContract):
        algorithm = "my-bracketed-algorithm"
        continues = True                    # its scheduler continues trials from their checkpoints

    class TestMyExecutor(ExecutorContract):
        executor = "my-executor"            # registered with trellis.register_executor(...)

Trellis' own suites (tests/test_*_contract.py) are these same classes, one subclass per registry row.
"""

from trellis.testing.executors import ExecutorContract
from trellis.testing.samplers import SamplerContract
from trellis.testing.schedulers import SchedulerContract, drive_scheduler

__all__ = ["ExecutorContract", "SamplerContract", "SchedulerContract", "drive_scheduler"]
