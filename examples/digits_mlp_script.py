"""The digits MLP as a script trial: ``python digits_mlp_script.py CONFIG.json``.

It reads its hyperparameters and budget from the JSON file Trellis writes, and reports by printing
``TRELLIS {...}`` lines; nothing else about it knows Trellis. Works the same when run by hand.
"""

import json
import sys

from trellis.examples import digits


def main(config_path: str) -> None:
    with open(config_path) as fh:
        config = json.load(fh)
    params, budget = config["params"], config["budget"]
    digits.torch.manual_seed(config.get("seed") or 0)  # the initial weights from the trial's seed
    model = digits.mlp(int(params.get("hidden", 64)), int(params.get("layers", 1)), float(params.get("dropout", 0.0)))

    def report(epoch: int, **metrics: float) -> None:
        print("TRELLIS " + json.dumps({"step": epoch, **metrics}), flush=True)

    model, _, _ = digits.train(model, params, range(budget["start"] + 1, budget["stop"] + 1), report)
    x_val = digits.load_digits_split()[2]
    print("TRELLIS " + json.dumps({"n_params": digits.n_params(model), "latency_ms": digits.latency_ms(model, x_val)}))


if __name__ == "__main__":
    main(sys.argv[1])
