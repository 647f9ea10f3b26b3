#!/usr/bin/python3
"""Generate optim/testdata/lars_fixtures.json: solo-learn's LARS, step by step.

Run by hand with Debian's python3-torch:

    /usr/bin/python3 tools/pytorch/gen_lars_fixtures.py

LARSRef below re-implements the step of solo-learn's LARS
(solo/utils/lars.py, copied from PyTorch Lightning Bolts; solo-learn is not
imported) for dampening 0 and no Nesterov:

    d = grad
    if (p.ndim != 1 or not exclude_bias_n_norm) and ||w|| != 0 and ||grad|| != 0:
        lars_lr = eta * ||w|| / (||grad|| + wd * ||w|| + eps)
        if clip_lr: lars_lr = min(lars_lr / lr, 1)
        d = lars_lr * (grad + wd * w)
    buf = clone(d) on the first step, else buf = momentum * buf + d
    w = w - lr * buf

The arithmetic is float64 (our optimizer computes in float64 too); after
every step the weights and momentum buffers are rounded to float32, as both
are stored in float32 on our side, and the JSON carries float32 values
written with 9 significant digits (exact round trips).

Parameters (names and our nn.Kind in the file):
    conv.weight  [4,2,3,3] weight   (adapted)
    fc.weight    [3,5]     weight   (adapted)
    fc.bias      [3]       bias     (excluded when exclude_bias_n_norm: ndim 1)
    bn.weight    [4]       bn_weight(excluded)
    bn.bias      [4]       bn_bias  (excluded)
Five steps at learning rates 0.3, 0.05, 0.6, 0.01, 0.2 with fresh random
gradients each step, scaled per parameter and step so that the clip binds
(lars_lr / lr > 1) for some adapted parameter-steps and not for others; at
step 4 fc.weight's gradient is zero (no adaptation, no weight decay). Cases:
clip_lr on and off, exclude_bias_n_norm on (both) and off (clip on),
momentum 0.9, weight decay 1e-4 (and 5e-2 in one case, so that the decay
term is visible at 1e-6), eta 0.02, eps 1e-8.

Each case records, per step, the learning rate, every parameter's gradient,
every parameter's value after the step, and for each adapted parameter
whether the clip bound (lars_lr / lr >= 1); the generator checks that every
clip case has both kinds of steps.
"""

import json
import os

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "optim", "testdata", "lars_fixtures.json")

PARAMS = [  # name, kind, shape
    ("conv.weight", "weight", (4, 2, 3, 3)),
    ("fc.weight", "weight", (3, 5)),
    ("fc.bias", "bias", (3,)),
    ("bn.weight", "bn_weight", (4,)),
    ("bn.bias", "bn_bias", (4,)),
]
LRS = [0.3, 0.05, 0.6, 0.01, 0.2]
# gradient norm per step for the adapted weights (chosen against ||w||, so
# that eta*||w||/||g|| falls on both sides of lr)
GRAD_SCALE = {
    "conv.weight": [0.01, 0.5, 0.02, 0.2, 0.003],
    "fc.weight": [0.5, 0.005, 0.05, 0.0, 0.05],
}


class LARSRef:
    """solo-learn's LARS step (dampening 0, no Nesterov), in float64."""

    def __init__(self, params, momentum, weight_decay, eta, eps, clip_lr, exclude_bias_n_norm):
        self.params = params
        self.momentum, self.weight_decay, self.eta, self.eps = momentum, weight_decay, eta, eps
        self.clip_lr, self.exclude = clip_lr, exclude_bias_n_norm
        self.state = {}

    @torch.no_grad()
    def step(self, lr):
        """Applies one step; returns {index: clip bound} for the adapted parameters."""
        bound = {}
        for i, p in enumerate(self.params):
            d_p = p.grad
            p_norm = torch.norm(p.data)
            g_norm = torch.norm(p.grad.data)
            if p.ndim != 1 or not self.exclude:
                if p_norm != 0 and g_norm != 0:
                    lars_lr = p_norm / (g_norm + p_norm * self.weight_decay + self.eps)
                    lars_lr *= self.eta
                    if self.clip_lr:
                        bound[i] = bool(lars_lr / lr >= 1)
                        lars_lr = min(lars_lr / lr, 1)
                    d_p = d_p.add(p, alpha=self.weight_decay)
                    d_p *= lars_lr
            if self.momentum != 0:
                if i not in self.state:
                    buf = self.state[i] = torch.clone(d_p).detach()
                else:
                    buf = self.state[i]
                    buf.mul_(self.momentum).add_(d_p)
                buf.copy_(buf.float().double())  # stored as float32 on our side
                d_p = buf
            p.add_(d_p, alpha=-lr)
            p.copy_(p.float().double())
        return bound


def f32list(t):
    return [float(f"{v:.9g}") for v in t.detach().float().flatten().tolist()]


def make_case(name, clip_lr, exclude, weight_decay, seed):
    g = torch.Generator().manual_seed(seed)
    params = []
    for pname, kind, shape in PARAMS:
        if kind == "bn_weight":
            v = 1 + 0.1 * torch.randn(shape, generator=g, dtype=torch.float64)
        else:
            v = torch.randn(shape, generator=g, dtype=torch.float64) * (0.5 if kind == "weight" else 0.1)
        p = torch.nn.Parameter(v.float().double())
        params.append(p)
    init = [f32list(p) for p in params]
    opt = LARSRef(params, momentum=0.9, weight_decay=weight_decay, eta=0.02, eps=1e-8,
                  clip_lr=clip_lr, exclude_bias_n_norm=exclude)
    steps = []
    for s, lr in enumerate(LRS):
        for (pname, kind, shape), p in zip(PARAMS, params):
            gr = torch.randn(shape, generator=g, dtype=torch.float64)
            if pname in GRAD_SCALE:
                gr = gr / gr.norm() * GRAD_SCALE[pname][s]
            else:
                gr = gr * 0.3
            p.grad = gr.float().double()
        grads = [f32list(p.grad) for p in params]
        bound = opt.step(lr)
        steps.append({
            "lr": lr,
            "grads": grads,
            "after": [f32list(p) for p in params],
            "clip_bound": {PARAMS[i][0]: b for i, b in sorted(bound.items())},
        })
    if clip_lr:
        flags = [b for st in steps for b in st["clip_bound"].values()]
        assert any(flags) and not all(flags), f"{name}: the clip binds at {flags}: want both kinds of steps"
    return {
        "name": name,
        "clip_lr": clip_lr,
        "exclude_bias_n_norm": exclude,
        "momentum": 0.9,
        "weight_decay": weight_decay,
        "eta": 0.02,
        "eps": 1e-8,
        "params": [{"name": n, "kind": k, "shape": list(sh)} for n, k, sh in PARAMS],
        "init": init,
        "steps": steps,
    }


def main():
    cases = [
        make_case("clip", True, True, 1e-4, 1),
        make_case("noclip", False, True, 1e-4, 1),
        make_case("clip_wd", True, True, 5e-2, 2),
        make_case("clip_noexclude", True, False, 1e-4, 3),
    ]
    doc = {
        "generator": "tools/pytorch/gen_lars_fixtures.py",
        "torch": torch.__version__,
        "cases": cases,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    for c in cases:
        print(c["name"], [st["clip_bound"] for st in c["steps"]])
    print("wrote", os.path.normpath(OUT))


if __name__ == "__main__":
    main()
