"""The scheduler contract (``trellis.testing.SchedulerContract``) for every scheduler in the registry, with and
without early stopping."""

from trellis.search.config import EarlyStopping
from trellis.search.registry import ALGORITHMS
from trellis.testing import SchedulerContract

PBT = {"population_size": 5, "interval": 2, "quantile": 0.4, "perturb": 0.1, "resample_probability": 0.2}
CASES = {  # name: algorithm, settings, early stopping, whether it continues trials
    "fifo": ("random", {}, None, False),
    "median": ("random", {}, EarlyStopping("median", 1, 2, 3, resume=False), False),
    "stop_and_go": ("random", {}, EarlyStopping("median", 1, 2, 3, resume=True), True),
    "successive_halving": ("tpe", {}, EarlyStopping("successive_halving", 1, 2, 3), False),
    "hyperband": ("hyperband", {"eta": 3}, None, True),
    "bohb": ("bohb", {"eta": 2}, None, True),
    "pbt": ("pbt", PBT, None, True),
}

for _name, (_algorithm, _settings, _early, _continues) in CASES.items():
    globals()[f"TestScheduler_{_name}"] = type(
        f"TestScheduler_{_name}",
        (SchedulerContract,),
        {"algorithm": _algorithm, "settings": _settings, "early_stopping": _early, "continues": _continues},
    )


def test_the_suite_covers_every_registered_scheduler():
    covered = {ALGORITHMS[algorithm].scheduler for algorithm, _, _, _ in CASES.values()}
    assert covered >= {spec.scheduler for spec in ALGORITHMS.values()}
