"""A small CNN on the 8x8 digits images, as a Trellis function trial."""

from __future__ import annotations

from trellis.examples import digits
from trellis.search.trial import TrialContext


def train(ctx: TrialContext) -> dict[str, float]:
    p = ctx.params
    digits.torch.manual_seed(0 if ctx.seed is None else ctx.seed)  # the initial weights: `trellis rerun` repeats them
    model = digits.cnn(
        channels=int(p.get("channels", 8)),
        kernel=int(p.get("kernel", 3)),
        dense=int(p.get("dense", 32)),
        dropout=float(p.get("dropout", 0.0)),
    )
    state = ctx.load_checkpoint() if ctx.budget_start > 0 else None
    model, opt, _ = digits.train(model, p, ctx.steps(), ctx.report, state=state)
    ctx.save_checkpoint({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": ctx.last_step})
    x_val = digits.load_digits_split()[2].to(digits.device())
    return {"n_params": digits.n_params(model), "latency_ms": digits.latency_ms(model, x_val)}
