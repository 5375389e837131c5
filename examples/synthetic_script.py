"""A script-mode trial: reads its JSON config, prints report lines. Knows nothing of Trellis' code.

Run as ``python synthetic_script.py CONFIG.json``. Exits 2 (after writing to stderr) when x > 0.9.
"""

import json
import sys
from pathlib import Path

config = json.loads(Path(sys.argv[1]).read_text())
params, budget = config["params"], config["budget"]
x = float(params["x"])
for epoch in range(budget["start"] + 1, budget["stop"] + 1):
    loss = (x - 0.3) ** 2 + 2.0**-epoch
    print("TRELLIS " + json.dumps({"step": epoch, "loss": loss}), flush=True)
if x > 0.9:
    print(f"x={x} is out of what this script accepts", file=sys.stderr)
    sys.exit(2)
print("TRELLIS " + json.dumps({"n_params": 42}))
