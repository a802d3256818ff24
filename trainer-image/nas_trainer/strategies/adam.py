"""Adam (Kingma & Ba 2015) for the controller, on one flat moment buffer.

Why not torch.optim.Adam: constructing any torch.optim optimizer imports torch._dynamo,
which costs seconds at every `nas run` start, and its per-parameter bookkeeping costs more
than the arithmetic for a policy of ~20k weights. The update is torch's (tests compare
them): m ← β1 m + (1-β1) g; v ← β2 v + (1-β2) g²; p ← p - lr/(1-β1ᵗ) · m / (√v/√(1-β2ᵗ) + ε).
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import torch


class FlatAdam:
    def __init__(self, parameters: Iterable[torch.nn.Parameter], lr: float,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.parameters = list(parameters)
        self.sizes = [p.numel() for p in self.parameters]
        self.lr, self.betas, self.eps = lr, betas, eps
        total = sum(self.sizes)
        self.exp_avg = torch.zeros(total)
        self.exp_avg_sq = torch.zeros(total)
        self.steps = 0

    def zero_grad(self) -> None:
        for parameter in self.parameters:
            parameter.grad = None

    @torch.no_grad()
    def step(self) -> None:
        grad = torch.cat([p.grad.reshape(-1) if p.grad is not None else p.new_zeros(p.numel())
                          for p in self.parameters])
        beta1, beta2 = self.betas
        self.steps += 1
        self.exp_avg.lerp_(grad, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denominator = (self.exp_avg_sq.sqrt() / math.sqrt(1 - beta2 ** self.steps)).add_(self.eps)
        update = self.exp_avg / denominator * (self.lr / (1 - beta1 ** self.steps))
        for parameter, change in zip(self.parameters, update.split(self.sizes)):
            parameter.sub_(change.view_as(parameter))

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "exp_avg": self.exp_avg.clone(),
                "exp_avg_sq": self.exp_avg_sq.clone()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state["exp_avg"].numel() != self.exp_avg.numel():
            raise ValueError(f"optimizer state is for {state['exp_avg'].numel()} weights, "
                             f"the policy has {self.exp_avg.numel()}")
        self.steps = int(state["steps"])
        self.exp_avg.copy_(state["exp_avg"])
        self.exp_avg_sq.copy_(state["exp_avg_sq"])
