#!/usr/bin/python3
"""Re-runs our first VICReg + LARS steps in PyTorch and compares step by step.

    go run ./tools/stepdump --out /tmp/dump --method vicreg --optimizer lars --lr 0.3 \
        --projector 512-512-512 --projector-bn --limit 10240 --epochs 2 --steps 30 [--clip=false]
    /usr/bin/python3 tools/pytorch/vicreg_step_check.py --dump /tmp/dump [--clip|--no-clip] [--steps N]

tools/stepdump (Go) writes the initial weights of our network
(init.safetensors, torchvision / projector names), the two augmented,
normalised views of every step (view{1,2}_NNNN.npy, NHWC float32), the
gradients of step 1 (grads1.safetensors) and per step our learning rate and
loss (steps.jsonl), with the spec in config.json.

This script builds the same network in PyTorch (bench_step.build_resnet:
torchvision's ResNet with our stem and width, fc = Identity;
bench_step.build_projector: Linear-BN-ReLU-...-Linear, the last without
bias, module indices equal to ours), loads init.safetensors, and for each
step: both views through the network in training mode, one forward pass per
view (per-view batch-norm statistics, as solo-learn's training_step and our
train.Step do); solo-learn's vicreg_loss_func (solo/losses/vicreg.py, copied
below: sim 25, var 25, cov 1, unbiased variance, eps 1e-4); backward; then
solo-learn's LARS step (solo/utils/lars.py re-implemented below, float32 as
solo-learn runs it: momentum 0.9, weight decay 1e-4, eta 0.02, eps 1e-8,
exclude_bias_n_norm true: p.ndim == 1 parameters take d = grad; clip_lr as
--clip / --no-clip, default: the dump's) at OUR learning rate of that step
(steps.jsonl). It prints, per step, our loss next to PyTorch's with the
relative difference, and for step 1 the relative difference of every
parameter's gradient (the worst ones) against grads1.safetensors.

--float64 runs PyTorch in float64 instead (the views and weights are the
same float32 values): how far float32 rounding alone moves the trajectory.
--json FILE writes the per-step table (with PyTorch's weight and gradient
norms of every parameter before each step). --views DIR reads the views from
another dump (the views depend only on the seed, the data and the step,
not on the weights, so runs that differ in the optimizer share them:
dump one with views and the others with --no-views).
"""

import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_step import build_projector, build_resnet, feature_dim  # noqa: E402
from check_checkpoint import read_safetensors_numpy  # noqa: E402


# ---------------------------------------------------------------- solo-learn's VICReg loss (solo/losses/vicreg.py)

def invariance_loss(z1, z2):
    return F.mse_loss(z1, z2)


def variance_loss(z1, z2):
    eps = 1e-4
    std_z1 = torch.sqrt(z1.var(dim=0) + eps)
    std_z2 = torch.sqrt(z2.var(dim=0) + eps)
    return torch.mean(F.relu(1 - std_z1)) + torch.mean(F.relu(1 - std_z2))


def covariance_loss(z1, z2):
    N, D = z1.size()
    z1 = z1 - z1.mean(dim=0)
    z2 = z2 - z2.mean(dim=0)
    cov_z1 = (z1.T @ z1) / (N - 1)
    cov_z2 = (z2.T @ z2) / (N - 1)
    diag = torch.eye(D, device=z1.device)
    return cov_z1[~diag.bool()].pow_(2).sum() / D + cov_z2[~diag.bool()].pow_(2).sum() / D


def vicreg_loss_func(z1, z2, sim_loss_weight=25.0, var_loss_weight=25.0, cov_loss_weight=1.0):
    sim = invariance_loss(z1, z2)
    var = variance_loss(z1, z2)
    cov = covariance_loss(z1, z2)
    loss = sim_loss_weight * sim + var_loss_weight * var + cov_loss_weight * cov
    return loss, {"sim": sim_loss_weight * float(sim), "var": var_loss_weight * float(var),
                  "cov": cov_loss_weight * float(cov)}


# ---------------------------------------------------------------- solo-learn's LARS (solo/utils/lars.py)

class LARS(torch.optim.Optimizer):
    """solo-learn's LARS step (from PyTorch Lightning Bolts), dampening 0, no Nesterov."""

    def __init__(self, params, lr, momentum=0.9, weight_decay=1e-4, eta=0.02, eps=1e-8,
                 clip_lr=True, exclude_bias_n_norm=True):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, eta=eta,
                                      eps=eps, clip_lr=clip_lr, exclude_bias_n_norm=exclude_bias_n_norm))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            weight_decay, momentum = group["weight_decay"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                d_p = p.grad
                p_norm = torch.norm(p.data)
                g_norm = torch.norm(p.grad.data)
                if p.ndim != 1 or not group["exclude_bias_n_norm"]:
                    if p_norm != 0 and g_norm != 0:
                        lars_lr = p_norm / (g_norm + p_norm * weight_decay + group["eps"])
                        lars_lr *= group["eta"]
                        if group["clip_lr"]:
                            lars_lr = min(lars_lr / group["lr"], 1)
                        d_p = d_p.add(p, alpha=weight_decay)
                        d_p *= lars_lr
                if momentum != 0:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        buf = state["momentum_buffer"] = torch.clone(d_p).detach()
                    else:
                        buf = state["momentum_buffer"]
                        buf.mul_(momentum).add_(d_p)
                    d_p = buf
                p.add_(d_p, alpha=-group["lr"])


# ---------------------------------------------------------------- the network

class Net(nn.Module):
    def __init__(self, spec):
        super().__init__()
        self.backbone = build_resnet(spec["arch"], int(spec["width"]), int(spec["in_channels"]), spec["stem"])
        self.backbone.fc = nn.Identity()
        self.projector = build_projector(feature_dim(spec["arch"], int(spec["width"])), spec["projector"],
                                         bool(spec["projector_bn"]))

    def forward(self, x):
        return self.projector(self.backbone(x))


def load(net, tensors):
    """Loads our init.safetensors into net; every tensor must be used."""
    bb = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tensors.items() if not k.startswith("projector.")}
    pr = {k[len("projector."):]: torch.from_numpy(np.ascontiguousarray(v))
          for k, v in tensors.items() if k.startswith("projector.")}
    r1 = net.backbone.load_state_dict(bb, strict=False)
    r2 = net.projector.load_state_dict(pr, strict=False)
    missing = [k for k in r1.missing_keys + r2.missing_keys if not k.endswith("num_batches_tracked")]
    unexpected = r1.unexpected_keys + r2.unexpected_keys
    if missing or unexpected:
        raise SystemExit(f"init.safetensors does not match the network: missing {missing[:5]}, unexpected {unexpected[:5]}")


def our_name(torch_name):
    return torch_name[len("backbone."):] if torch_name.startswith("backbone.") else torch_name


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dump", required=True, help="directory written by tools/stepdump")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--clip", dest="clip", action="store_true", default=None, help="clip_lr on")
    g.add_argument("--no-clip", dest="clip", action="store_false", help="clip_lr off")
    ap.add_argument("--steps", type=int, default=0, help="steps to run (0: all the dump has)")
    ap.add_argument("--views", help="read the views from this dump instead (a run dumped with --no-views"
                    " that has the same seed, data and schedule length)")
    ap.add_argument("--float64", action="store_true", help="run PyTorch in float64")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="write the per-step table here")
    ap.add_argument("--show-grads", type=int, default=5, help="step-1 gradients to list (the worst)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    dtype = torch.float64 if args.float64 else torch.float32

    with open(os.path.join(args.dump, "config.json")) as f:
        dumpcfg = json.load(f)
    cfg, spec = dumpcfg["config"], dumpcfg["spec"]
    if cfg["method"] != "vicreg" or cfg["optimizer"] != "lars":
        raise SystemExit(f"the dump is {cfg['method']} with {cfg['optimizer']}: this script checks vicreg with lars")
    clip = dumpcfg["clip_lr"] if args.clip is None else args.clip
    mo = cfg["method_options"]
    weights = (mo.get("sim_coeff", 25.0), mo.get("std_coeff", 25.0), mo.get("cov_coeff", 1.0))
    ours = []
    with open(os.path.join(args.dump, "steps.jsonl")) as f:
        for line in f:
            ours.append(json.loads(line))
    n = len(ours) if args.steps <= 0 else min(args.steps, len(ours))

    net = Net(spec)
    tensors, _ = read_safetensors_numpy(os.path.join(args.dump, "init.safetensors"))
    load(net, tensors)
    net = net.to(dtype)
    net.train()
    params = [p for p in net.parameters()]
    opt = LARS(params, lr=ours[0]["lr"], momentum=cfg["momentum"], weight_decay=cfg["weight_decay"], eta=0.02,
               eps=1e-8, clip_lr=clip, exclude_bias_n_norm=True)
    print(f"dump {args.dump}: {spec['arch']} w{spec['width']} {spec['stem']}, projector {spec['projector']}"
          f"{' +BN' if spec['projector_bn'] else ''}, batch {cfg['batch']}; ours clip_lr={dumpcfg['clip_lr']},"
          f" PyTorch clip_lr={clip}, {'float64' if args.float64 else 'float32'}")
    print(f"{'step':>4} {'lr':>9} {'ours':>11} {'pytorch':>11} {'rel':>9}   "
          f"{'ours sim/var/cov':>26}   {'pytorch sim/var/cov':>26}")
    table = []
    for s in range(n):
        rec = ours[s]
        x = []
        for v in (1, 2):
            path = os.path.join(args.views or args.dump, f"view{v}_{s + 1:04d}.npy")
            a = np.load(path)
            x.append(torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2))).to(dtype))
        for group in opt.param_groups:
            group["lr"] = rec["lr"]
        opt.zero_grad(set_to_none=True)
        z1 = net(x[0])
        z2 = net(x[1])
        loss, comps = vicreg_loss_func(z1, z2, *weights)
        loss.backward()
        finite = torch.isfinite(loss).item() and all(torch.isfinite(p.grad).all().item() for p in params)
        tl = float(loss)
        ol = rec["loss"] if not rec.get("error") else float("nan")
        rel = abs(ol - tl) / max(abs(tl), 1e-30)
        oc = rec.get("components", {})
        print(f"{s + 1:4d} {rec['lr']:9.5f} {ol:11.5f} {tl:11.5f} {rel:9.2e}   "
              f"{oc.get('sim', float('nan')):8.4f} {oc.get('var', float('nan')):8.4f} {oc.get('cov', float('nan')):8.4f}   "
              f"{comps['sim']:8.4f} {comps['var']:8.4f} {comps['cov']:8.4f}"
              + (f"   ours: {rec['error']}" if rec.get("error") else ""))
        table.append({"step": s + 1, "lr": rec["lr"], "ours": ol, "pytorch": tl, "rel": rel,
                      "ours_components": oc, "pytorch_components": comps,
                      "pytorch_params": [{"name": our_name(nm), "w": float(p.detach().double().norm()),
                                          "g": float(p.grad.detach().double().norm())}
                                         for nm, p in net.named_parameters()]})
        if s == 0:
            gpath = os.path.join(args.dump, "grads1.safetensors")
            if os.path.exists(gpath):
                grads, _ = read_safetensors_numpy(gpath)
                worst = []
                for name, p in net.named_parameters():
                    key = "grad." + our_name(name)
                    if key not in grads:
                        raise SystemExit(f"grads1.safetensors lacks {key}")
                    gt = p.grad.detach().double().numpy()
                    go = grads[key].astype(np.float64)
                    r = float(np.linalg.norm(go - gt) / max(np.linalg.norm(gt), 1e-30))
                    worst.append((r, our_name(name), float(np.linalg.norm(gt))))
                worst.sort(reverse=True)
                print("     step-1 gradients, relative difference ||ours - pytorch|| / ||pytorch|| (||pytorch||), worst"
                      f" {args.show_grads} of {len(worst)}: "
                      + ", ".join(f"{nm} {r:.2e} ({gn:.3g})" for r, nm, gn in worst[:args.show_grads]))
                print(f"     median relative difference {np.median([r for r, _, _ in worst]):.2e}")
        if not finite:
            print(f"     PyTorch: non-finite loss or gradient at step {s + 1}")
            break
        opt.step()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(table, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
