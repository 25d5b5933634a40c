"""Adam as one fused kernel per parameter group, without `torch.optim`'s set-up cost.

Constructing any `torch.optim.Optimizer` imports `torch._dynamo` (1.2 s of a 2-core
machine's start-up, 4% of a default run) to wrap its methods; this class calls the
same fused Adam kernel that `torch.optim.Adam(fused=True)` calls, and keeps that
class's `param_groups`, `state_dict` layout and skip-on-`found_inf` behaviour, so
checkpoints move between the two. `torch.optim.Adam` is its reference twin in
tests/test_fast_paths.py.
"""
from __future__ import annotations

import torch
from torch import Tensor


class FusedAdam:
    """Adam (no weight decay, no amsgrad) over groups {"params": [...], "lr": float}.

    `found_inf`: a 0-d float tensor (1 = skip) read by the kernel on the device; a
    skipped step changes no parameter, moment or step count.
    """

    def __init__(self, groups: list[dict], betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        self.param_groups = [{"params": list(g["params"]), "lr": float(g["lr"]),
                              "betas": tuple(betas), "eps": eps} for g in groups]
        self.state: dict[Tensor, dict[str, Tensor]] = {}
        self.found_inf: Tensor | None = None

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def _state(self, p: Tensor) -> dict[str, Tensor]:
        if p not in self.state:
            self.state[p] = {"step": torch.zeros((), dtype=torch.float32, device=p.device),
                             "exp_avg": torch.zeros_like(p),
                             "exp_avg_sq": torch.zeros_like(p)}
        return self.state[p]

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            states = [self._state(p) for p in params]
            steps = [s["step"] for s in states]
            found = None if self.found_inf is None else self.found_inf.to(params[0].device)
            torch._foreach_add_(steps, 1)
            beta1, beta2 = group["betas"]
            torch._fused_adam_(params, [p.grad for p in params],
                               [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
                               [], steps, lr=group["lr"], beta1=beta1, beta2=beta2,
                               weight_decay=0.0, eps=group["eps"], amsgrad=False,
                               maximize=False, grad_scale=None, found_inf=found)
            if found is not None:  # the kernel skipped the update; undo the count too
                torch._foreach_sub_(steps, [found] * len(steps))

    def state_dict(self) -> dict:
        """`torch.optim.Adam.state_dict()`'s layout: parameters by index over the groups."""
        index, state, groups = 0, {}, []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                if p in self.state:
                    state[index] = dict(self.state[p])
                ids.append(index)
                index += 1
            groups.append({"lr": group["lr"], "betas": group["betas"], "eps": group["eps"],
                           "weight_decay": 0.0, "amsgrad": False, "maximize": False,
                           "fused": True, "params": ids})
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, saved: dict) -> None:
        """From this class's or `torch.optim.Adam`'s state_dict (same groups and shapes)."""
        ours = [p for group in self.param_groups for p in group["params"]]
        theirs = [i for group in saved["param_groups"] for i in group["params"]]
        if len(ours) != len(theirs):
            raise ValueError("the saved optimizer state has another number of parameters")
        self.state = {}
        for p, i in zip(ours, theirs):
            if i in saved["state"]:
                s = saved["state"][i]
                self.state[p] = {
                    "step": torch.as_tensor(s["step"], dtype=torch.float32).to(p.device).clone(),
                    "exp_avg": s["exp_avg"].to(p.device, p.dtype).clone(),
                    "exp_avg_sq": s["exp_avg_sq"].to(p.device, p.dtype).clone()}
        for group, old in zip(self.param_groups, saved["param_groups"]):
            group["lr"], group["betas"], group["eps"] = old["lr"], tuple(old["betas"]), old["eps"]
