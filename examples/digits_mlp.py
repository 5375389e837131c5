"""A torch MLP on scikit-learn's digits, as a Trellis function trial (epochs are the budget)."""

from __future__ import annotations

from trellis.examples import digits
from trellis.search.trial import TrialContext


def build(params: dict) -> digits.nn.Module:
    return digits.mlp(
        hidden=int(params.get("hidden", 64)),
        layers=int(params.get("layers", 1)),
        dropout=float(params.get("dropout", 0.0)),
        activation=str(params.get("activation", "relu")),
    )


def train(ctx: TrialContext) -> dict[str, float]:
    # The initial weights from the trial's seed: one trial, one result, in any worker and on `trellis rerun`.
    digits.torch.manual_seed(0 if ctx.seed is None else ctx.seed)
    model = build(ctx.params)
    state = ctx.load_checkpoint() if ctx.budget_start > 0 else None
    if ctx.budget_start > 0 and state is None:
        raise RuntimeError(f"asked to resume at epoch {ctx.budget_start} but {ctx.checkpoint_path} does not exist")
    if state is not None and int(state["step"]) != ctx.budget_start:
        raise RuntimeError(f"asked to resume at epoch {ctx.budget_start}, the checkpoint holds {state['step']}")

    def checkpoint(model: digits.nn.Module, opt: digits.torch.optim.Optimizer, epoch: int) -> None:
        ctx.save_checkpoint({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": epoch})

    model, opt, _ = digits.train(model, ctx.params, ctx.steps(), ctx.report, state=state, checkpoint=checkpoint)
    x_val = digits.load_digits_split()[2].to(digits.device())
    return {"n_params": digits.n_params(model), "latency_ms": digits.latency_ms(model, x_val)}
