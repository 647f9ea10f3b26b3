#!/usr/bin/env python3
"""Generate PyTorch reference fixtures for the Go package ssl.

Run by hand from the repository root (needs Debian's python3-torch, so use
the system interpreter if another python3 comes first in PATH):

    /usr/bin/python3 tools/pytorch/gen_ssl_fixtures.py

Each loss is written anew the way its reference code computes it, in float64
with autograd supplying the gradients:
  * CorInfoMax: the paper's reference implementation (per-view running R and
    mu in float64, lam weights the old estimate, divide by N, logdet with
    eps*I, alpha * MSE + cov terms), see docs/design.md section 1;
  * Barlow Twins, VICReg, SimCLR: solo-learn's loss functions;
  * W-MSE: the W-MSE code (Whitening2d with Cholesky, normalised MSE, both
    views receive gradients).
For every case it runs 3 consecutive steps on seeded inputs (float64 values
rounded to float32, so the Go side reads them exactly) and writes inputs,
loss, components and gradients to ssl/testdata/ssl_fixtures.json.
"""

import json
import os
import sys

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover
    sys.exit("gen_ssl_fixtures.py needs PyTorch and NumPy: run it with /usr/bin/python3 (Debian python3-torch)")

torch.set_default_dtype(torch.float64)
STEPS = 3


class CorInfoMaxRef:
    """CorInfoMax loss with per-view running covariance and mean."""

    def __init__(self, d, o):
        self.o = o
        self.R = [o["InitScale"] * torch.eye(d) for _ in range(2)]
        self.mu = [torch.zeros(d) for _ in range(2)]

    def __call__(self, z1, z2, step):
        o = self.o
        if o["Normalize"]:
            z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
        n, d = z1.shape
        sim = o["Alpha"] * F.mse_loss(z1, z2)
        covs, new = [], []
        for b, z in enumerate((z1, z2)):
            mu_new = o["LamMu"] * self.mu[b] + (1 - o["LamMu"]) * z.mean(0)
            zc = z - mu_new
            r_new = o["LamR"] * self.R[b] + (1 - o["LamR"]) * (zc.T @ zc) / n
            covs.append(-torch.logdet(r_new + o["Eps"] * torch.eye(d)) / d)
            new.append((r_new.detach(), mu_new.detach()))
        for b in range(2):
            self.R[b], self.mu[b] = new[b]
        return sim + covs[0] + covs[1], [("sim", sim), ("cov1", covs[0]), ("cov2", covs[1])]


def barlow(o):
    def f(z1, z2, step):
        n, d = z1.shape
        bn = torch.nn.BatchNorm1d(d, affine=False)  # train mode: biased variance, eps 1e-5
        c = torch.einsum("bi,bj->ij", bn(z1), bn(z2)) / n
        eye = torch.eye(d)
        cdif = (c - eye).pow(2)
        on = o["ScaleLoss"] * (cdif * eye).sum()
        off = o["ScaleLoss"] * o["Lambda"] * (cdif * (1 - eye)).sum()
        return on + off, [("on_diag", on), ("off_diag", off)]
    return f


def vicreg(o):
    def f(z1, z2, step):
        n, d = z1.shape
        sim = o["SimCoeff"] * F.mse_loss(z1, z2)
        var = 0
        cov = 0
        for z in (z1, z2):
            std = torch.sqrt(z.var(dim=0) + o["VarEps"])  # unbiased
            var = var + torch.mean(F.relu(o["Gamma"] - std))
            zc = z - z.mean(dim=0)
            c = (zc.T @ zc) / (n - 1)
            off = ~torch.eye(d, dtype=torch.bool)
            cov = cov + c[off].pow(2).sum() / d
        var, cov = o["StdCoeff"] * var, o["CovCoeff"] * cov
        return sim + var + cov, [("sim", sim), ("var", var), ("cov", cov)]
    return f


def simclr(o):
    def f(z1, z2, step):
        n = z1.shape[0]
        z = F.normalize(torch.cat((z1, z2)), dim=-1)
        idx = torch.arange(n).repeat(2).unsqueeze(0)
        sim = torch.exp(torch.einsum("if,jf->ij", z, z) / o["Temperature"])
        pos_mask = idx.t() == idx
        pos_mask.fill_diagonal_(0)
        neg_mask = idx.t() != idx
        pos = torch.sum(sim * pos_mask, 1)
        neg = torch.sum(sim * neg_mask, 1)
        loss = -torch.mean(torch.log(pos / (pos + neg)))
        return loss, [("nce", loss)]
    return f


def whiten(x, eps):
    d = x.shape[1]
    xn = x - x.mean(0)
    cov = xn.T @ xn / (x.shape[0] - 1)
    eye = torch.eye(d)
    shrunk = (1 - eps) * cov + eps * eye
    w = torch.linalg.solve_triangular(torch.linalg.cholesky(shrunk), eye, upper=False)
    return xn @ w.T


def wmse(o, perms):
    def f(z1, z2, step):
        n = z1.shape[0]
        h = torch.cat((z1, z2))
        loss = 0
        for it in range(o["WIter"]):
            p = torch.randperm(n, generator=GEN)
            perms[step].append(p.tolist())
            z = torch.empty_like(h)
            for idx in p.view(-1, o["WSize"]):
                for i in range(2):
                    z[idx + i * n] = whiten(h[idx + i * n], o["WEps"])
            x0, x1 = F.normalize(z[:n]), F.normalize(z[n:])
            loss = loss + 2 - 2 * (x0 * x1).sum(dim=-1).mean()
        loss = loss / o["WIter"]
        return loss, [("wmse", loss)]
    return f


GEN = torch.Generator().manual_seed(1234)


def inputs(rng, n, d, scale=None):
    z1 = rng.standard_normal((n, d))
    z2 = z1 + 0.5 * rng.standard_normal((n, d))
    if scale is not None:
        z1, z2 = z1 * scale, z2 * scale
    # Round to float32 so that the Go side reads exactly these values.
    return z1.astype(np.float32).astype(np.float64), z2.astype(np.float32).astype(np.float64)


def run_case(name, method, options, n, d, make_loss, seed, scale=None):
    rng = np.random.default_rng(seed)
    perms = {s: [] for s in range(1, STEPS + 1)}
    loss_fn = make_loss(options, perms)
    steps = []
    for step in range(1, STEPS + 1):
        a, b = inputs(rng, n, d, scale)
        z1 = torch.tensor(a, requires_grad=True)
        z2 = torch.tensor(b, requires_grad=True)
        loss, comps = loss_fn(z1, z2, step)
        loss.backward()
        rec = {
            "z1": a.ravel().tolist(),
            "z2": b.ravel().tolist(),
            "loss": loss.item(),
            "components": [[k, float(v)] for k, v in comps],
            "g1": z1.grad.ravel().tolist(),
            "g2": z2.grad.ravel().tolist(),
        }
        if perms[step]:
            rec["perms"] = perms[step]
        steps.append(rec)
    return {"name": name, "method": method, "options": options, "n": n, "d": d, "steps": steps}


def main():
    cases = [
        run_case("corinfomax_cifar10", "corinfomax",
                 dict(Alpha=250.0, LamR=0.01, LamMu=0.01, Eps=1e-8, InitScale=1.0, Normalize=True),
                 16, 8, lambda o, p: CorInfoMaxRef(8, o), seed=1),
        run_case("corinfomax_small_batch", "corinfomax",
                 dict(Alpha=2.5, LamR=0.3, LamMu=0.6, Eps=1e-6, InitScale=0.5, Normalize=False),
                 6, 10, lambda o, p: CorInfoMaxRef(10, o), seed=2),
        run_case("barlowtwins", "barlowtwins", dict(Lambda=0.0051, ScaleLoss=0.1),
                 16, 8, lambda o, p: barlow(o), seed=3),
        run_case("vicreg", "vicreg",
                 dict(SimCoeff=25.0, StdCoeff=25.0, CovCoeff=1.0, Gamma=1.0, VarEps=1e-4),
                 16, 8, lambda o, p: vicreg(o), seed=4, scale=np.linspace(0.3, 2.0, 8)),
        run_case("simclr", "simclr", dict(Temperature=0.2), 16, 8, lambda o, p: simclr(o), seed=5),
        run_case("wmse_split", "wmse", dict(WSize=8, WIter=2, WEps=0.0),
                 16, 4, lambda o, p: wmse(o, p), seed=6),
        run_case("wmse_shrunk", "wmse", dict(WSize=16, WIter=1, WEps=0.1),
                 16, 8, lambda o, p: wmse(o, p), seed=7),
    ]
    out = {
        "generator": "tools/pytorch/gen_ssl_fixtures.py",
        "torch_version": torch.__version__,
        "cases": cases,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "ssl", "testdata", "ssl_fixtures.json")
    with open(os.path.normpath(path), "w") as fh:
        json.dump(out, fh, separators=(",", ":"))
        fh.write("\n")
    print("wrote", os.path.normpath(path), "with", len(cases), "cases")


if __name__ == "__main__":
    main()
