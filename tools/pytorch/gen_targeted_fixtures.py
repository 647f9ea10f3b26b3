#!/usr/bin/env python3
"""Generate PyTorch reference fixtures for the targeted (asymmetric)
objectives of the Go package ssl: BYOL, SimSiam and MoCo v2+.

Run by hand from the repository root (needs Debian's python3-torch, so use
the system interpreter if another python3 comes first in PATH):

    /usr/bin/python3 tools/pytorch/gen_targeted_fixtures.py

Each loss is written anew the way solo-learn computes it (solo/losses/byol.py,
simsiam.py, mocov2plus.py and the training steps of solo/methods/byol.py,
simsiam.py, mocov2plus.py), in float64 with autograd supplying the gradients
with respect to the online outputs o1, o2; the targets t1, t2 are detached:
  * BYOL:    L = byol(o2, t1) + byol(o1, t2), byol(p, z) = 2 - 2 mean cos(p, z)
  * SimSiam: L = -cos(o1, t2)/2 - cos(o2, t1)/2 (cos averaged over rows)
  * MoCo v2+: q = normalize(o), k = normalize(t), two queues of past keys
    (queue[v] holds view v+1's keys, solo-learn's (2, d, K) buffer, float32
    like solo-learn's), L = (nce(q1, k2, queue[1]) + nce(q2, k1, queue[0])) / 2,
    then k1, k2 enqueued at the shared write pointer. solo-learn asserts
    K % batch == 0; the Go code (and this reference) wraps around the ring,
    so the small queues here (K = 20, batch 8) wrap in the middle of step 3.
For every case it runs 3 consecutive steps on seeded inputs (float64 values
rounded to float32, so that the Go side reads them exactly) and writes the
inputs, loss, components and gradients to ssl/testdata/targeted_fixtures.json;
for MoCo also the initial queues (rows [K, d], rounded to float32) and the
queues and pointer after each step.
"""

import json
import os
import sys

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover
    sys.exit("gen_targeted_fixtures.py needs PyTorch and NumPy: run it with /usr/bin/python3 (Debian python3-torch)")

torch.set_default_dtype(torch.float64)
STEPS = 3


# --- solo-learn's loss functions (simplified=True, their default) ---

def byol_loss_func(p, z):
    return 2 - 2 * F.cosine_similarity(p, z.detach(), dim=-1).mean()


def simsiam_loss_func(p, z):
    return -F.cosine_similarity(p, z.detach(), dim=-1).mean()


def mocov2plus_loss_func(query, key, queue, temperature):
    pos = torch.einsum("nc,nc->n", [query, key]).unsqueeze(-1)
    neg = torch.einsum("nc,ck->nk", [query, queue])
    logits = torch.cat([pos, neg], dim=1)
    logits /= temperature
    targets = torch.zeros(query.size(0), dtype=torch.long)
    return F.cross_entropy(logits, targets)


# --- the methods' training steps on (o1, o2, t1, t2) ---

def byol(o):
    def f(o1, o2, t1, t2):
        # solo-learn: for v1 in crops, v2 != v1: byol_loss_func(P[v2], Z_momentum[v1]).
        loss = byol_loss_func(o2, t1) + byol_loss_func(o1, t2)
        return loss, [("byol", loss)]
    return f


def simsiam(o):
    def f(o1, o2, t1, t2):
        loss = simsiam_loss_func(o1, t2) / 2 + simsiam_loss_func(o2, t1) / 2
        return loss, [("neg_cos", loss)]
    return f


class MoCoV2Plus:
    """mocov2plus's training step with its (2, d, K) float32 queue."""

    def __init__(self, o, d, gen):
        self.temperature = o["moco_temperature"]
        self.K = o["queue_size"]
        queue = torch.randn(2, d, self.K, generator=gen)
        self.queue = F.normalize(queue, dim=1).float()
        self.ptr = 0

    def rows(self, v):
        """Queue v as [K, d] rows, the Go layout."""
        return self.queue[v].t().double().ravel().tolist()

    def __call__(self, o1, o2, t1, t2):
        q1, q2 = F.normalize(o1, dim=-1), F.normalize(o2, dim=-1)
        with torch.no_grad():
            k1, k2 = F.normalize(t1, dim=-1), F.normalize(t2, dim=-1)
        queue = self.queue.clone().detach().double()
        loss = (mocov2plus_loss_func(q1, k2, queue[1], self.temperature)
                + mocov2plus_loss_func(q2, k1, queue[0], self.temperature)) / 2
        # _dequeue_and_enqueue, as a ring: row r of the batch goes to
        # column (ptr + r) % K.
        n = k1.shape[0]
        idx = (self.ptr + torch.arange(n)) % self.K
        keys = torch.stack((k1, k2)).float()  # (2, n, d)
        self.queue[:, :, idx] = keys.permute(0, 2, 1)
        self.ptr = (self.ptr + n) % self.K
        return loss, [("nce", loss)]


def f32(x):
    return x.astype(np.float32).astype(np.float64)


def inputs(rng, n, d):
    """Both views' o and t share a latent x: their cosines are far from 0."""
    x = rng.standard_normal((n, d))
    o1, o2 = (f32(x + 0.5 * rng.standard_normal((n, d))) for _ in range(2))
    t1, t2 = (f32(1.5 * x + 0.7 * rng.standard_normal((n, d))) for _ in range(2))
    return o1, o2, t1, t2


def run_case(name, method, options, n, d, seed):
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    moco = None
    if method == "byol":
        loss_fn = byol(options)
    elif method == "simsiam":
        loss_fn = simsiam(options)
    else:
        moco = MoCoV2Plus(options, d, gen)
        loss_fn = moco
    case = {"name": name, "method": method, "options": options, "n": n, "d": d}
    if moco is not None:
        case["queue_init"] = {"queue1": moco.rows(0), "queue2": moco.rows(1), "queue_ptr": moco.ptr}
    steps = []
    for step in range(1, STEPS + 1):
        a1, a2, b1, b2 = inputs(rng, n, d)
        o1 = torch.tensor(a1, requires_grad=True)
        o2 = torch.tensor(a2, requires_grad=True)
        t1, t2 = torch.tensor(b1), torch.tensor(b2)
        loss, comps = loss_fn(o1, o2, t1, t2)
        loss.backward()
        rec = {
            "o1": a1.ravel().tolist(), "o2": a2.ravel().tolist(),
            "t1": b1.ravel().tolist(), "t2": b2.ravel().tolist(),
            "loss": loss.item(),
            "components": [[k, float(v)] for k, v in comps],
            "g1": o1.grad.ravel().tolist(),
            "g2": o2.grad.ravel().tolist(),
        }
        if moco is not None:
            rec["queue1"], rec["queue2"], rec["queue_ptr"] = moco.rows(0), moco.rows(1), moco.ptr
        steps.append(rec)
    case["steps"] = steps
    return case


def main():
    cases = [
        run_case("byol", "byol", {}, 8, 6, seed=11),
        run_case("simsiam", "simsiam", {}, 8, 6, seed=12),
        # K = 20, batch 8: the pointer goes 0, 8, 16, 4 (step 3 wraps).
        run_case("mocov2_wrap", "mocov2", {"queue_size": 20, "moco_temperature": 0.2}, 8, 6, seed=13),
        # K a multiple of the batch (solo-learn's case), another temperature.
        run_case("mocov2_k16_t05", "mocov2", {"queue_size": 16, "moco_temperature": 0.5}, 8, 5, seed=14),
    ]
    out = {
        "generator": "tools/pytorch/gen_targeted_fixtures.py",
        "torch_version": torch.__version__,
        "cases": cases,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "ssl", "testdata", "targeted_fixtures.json")
    with open(os.path.normpath(path), "w") as fh:
        json.dump(out, fh, separators=(",", ":"))
        fh.write("\n")
    print("wrote", os.path.normpath(path), "with", len(cases), "cases")


if __name__ == "__main__":
    main()
