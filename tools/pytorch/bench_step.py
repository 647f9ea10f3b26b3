#!/usr/bin/python3
"""PyTorch reference timing for `corinfomax bench step`.

Run with Debian's python3-torch 1.13 (not the pyenv python3 on PATH):

    /usr/bin/python3 tools/pytorch/bench_step.py --arch resnet18 --width 64 \
        --stem cifar --batch 128 --steps 5 --threads 2 --method corinfomax \
        --projector 2048-2048-64 --json

One training step on random synthetic data (fixed seed), channels_last
memory format for the model and the inputs, SGD(lr 0.1, momentum 0.9,
weight decay 1e-4):

  supervised   backbone + fc (10 classes), cross-entropy.
  corinfomax   two views, each through backbone + projector in its own
               forward pass (per-view batch-norm statistics), the CorInfoMax
               loss of docs/design.md section 1 (L2-normalised rows,
               per-view running mean / covariance in float64, lam 0.01,
               eps 1e-8, alpha 250, log-determinant by Cholesky in float64,
               the running state updated after the step from detached values).

With --precision bf16 the forward passes (backbone and projector) run under
torch.autocast("cpu", dtype=torch.bfloat16), PyTorch's mixed-precision
path (convolutions and linear layers in bfloat16, oneDNN's bf16 kernels on
CPUs with AVX512-BF16 or AMX); the loss is computed in float32/float64 as
in fp32 mode, the weights and the optimizer stay float32.

A step is zero_grad + forward(s) + loss + backward + optimizer step (+ the
loss-state update); it is timed with time.perf_counter after --warmup
untimed steps. images_per_sec counts images through the backbone (batch for
supervised, 2 * batch for corinfomax) and is the median of the per-step
rates; images_per_sec_mean is their mean. peak_rss_bytes is
getrusage(RUSAGE_SELF).ru_maxrss * 1024 (Linux reports KiB).

The module also exports the model builders used by check_checkpoint.py:
build_resnet (torchvision's ResNet with base width w; state_dict keys are
torchvision's) and build_projector.
"""

import argparse
import json
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

ARCHS = {
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
    "resnet34": (BasicBlock, [3, 4, 6, 3]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
}


class WidthResNet(ResNet):
    """torchvision's ResNet with base width `width` (stages width, 2w, 4w, 8w).

    Only __init__ is replaced; torchvision's _make_layer, BasicBlock,
    Bottleneck and forward are used as they are, so the state_dict keys and
    the computation are torchvision's. base_width stays 64, so a Bottleneck's
    inner width equals its planes, as in torchvision's resnet50.
    """

    def __init__(self, block, layers, width=64, in_channels=3, stem="cifar", num_classes=10,
                 zero_init_residual=False):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes = width
        self.dilation = 1
        self.groups = 1
        self.base_width = 64
        if stem == "cifar":
            self.conv1 = nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False)
        elif stem == "imagenet":
            self.conv1 = nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False)
        else:
            raise ValueError(f"unknown stem {stem!r} (want cifar or imagenet)")
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        if stem == "cifar":
            self.maxpool = nn.Identity()
        else:
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, 2 * width, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * width, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * width, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * width * block.expansion, num_classes)
        # torchvision's initialisation.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.constant_(m.bn3.weight, 0)
                elif isinstance(m, BasicBlock):
                    nn.init.constant_(m.bn2.weight, 0)


def build_resnet(arch, width=64, in_channels=3, stem="cifar", num_classes=10, zero_init_residual=False):
    """Returns torchvision's ResNet `arch` with base width `width`."""
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r} (want one of {', '.join(ARCHS)})")
    block, layers = ARCHS[arch]
    return WidthResNet(block, layers, width=width, in_channels=in_channels, stem=stem,
                       num_classes=num_classes, zero_init_residual=zero_init_residual)


def feature_dim(arch, width):
    """Length of the backbone feature vector (the fc input)."""
    block, _ = ARCHS[arch]
    return 8 * width * block.expansion


def build_projector(in_dim, spec, bn=False):
    """Linear-ReLU-...-Linear from spec "h1-h2-...-out"; the last Linear has no bias.

    With bn, every hidden Linear is followed by BatchNorm1d (the module
    indices then match the Go projector's: Linear, BN, ReLU, ...).
    """
    dims = [int(d) for d in spec.split("-")]
    layers = []
    prev = in_dim
    for i, d in enumerate(dims):
        last = i == len(dims) - 1
        layers.append(nn.Linear(prev, d, bias=not last))
        if not last:
            if bn:
                layers.append(nn.BatchNorm1d(d))
            layers.append(nn.ReLU(inplace=True))
        prev = d
    return nn.Sequential(*layers)


class CorInfoMaxLoss:
    """The CorInfoMax loss with per-view running mean and covariance (float64).

    loss(z1, z2) returns the loss and the new state; commit(state) stores it
    (call it after the optimizer step).
    """

    def __init__(self, dim, lam=0.01, eps=1e-8, alpha=250.0):
        self.dim, self.lam, self.eps, self.alpha = dim, lam, eps, alpha
        self.mu = [torch.zeros(dim, dtype=torch.float64) for _ in range(2)]
        self.R = [torch.eye(dim, dtype=torch.float64) for _ in range(2)]
        self.eye = torch.eye(dim, dtype=torch.float64)

    def loss(self, z1, z2):
        n, d = z1.shape
        z1 = F.normalize(z1, dim=1)
        z2 = F.normalize(z2, dim=1)
        lsim = (z1 - z2).pow(2).sum() / (n * d)
        total = self.alpha * lsim.double()
        new_state = []
        for b, z in enumerate((z1, z2)):
            z = z.double()
            mu = self.lam * self.mu[b] + (1 - self.lam) * z.mean(dim=0)
            zc = z - mu
            R = self.lam * self.R[b] + (1 - self.lam) * (zc.t() @ zc) / n
            L = torch.linalg.cholesky(R + self.eps * self.eye)
            lcov = -2.0 * torch.log(torch.diagonal(L)).sum() / d
            total = total + lcov
            new_state.append((mu, R))
        return total, new_state

    def commit(self, new_state):
        for b, (mu, R) in enumerate(new_state):
            self.mu[b] = mu.detach()
            self.R[b] = R.detach()


def parse_args(argv):
    p = argparse.ArgumentParser(description="PyTorch reference for `corinfomax bench step`.")
    p.add_argument("--arch", default="resnet18", choices=sorted(ARCHS))
    p.add_argument("--width", type=int, default=64, help="base channels (stages w, 2w, 4w, 8w)")
    p.add_argument("--stem", default="cifar", choices=["cifar", "imagenet"])
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=10, help="timed steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--method", default="supervised", choices=["supervised", "corinfomax"])
    p.add_argument("--projector", default="2048-2048-64")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON line")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                   help="bf16: forward passes under torch.autocast('cpu', dtype=torch.bfloat16)")
    args = p.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.batch < 2 or args.width < 1 or args.threads < 1:
        p.error("need --steps >= 1, --warmup >= 0, --batch >= 2, --width >= 1, --threads >= 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    cl = torch.channels_last

    model = build_resnet(args.arch, args.width, args.channels, args.stem, num_classes=10)
    projector = None
    if args.method == "corinfomax":
        model.fc = nn.Identity()
        projector = build_projector(feature_dim(args.arch, args.width), args.projector)
        params = list(model.parameters()) + list(projector.parameters())
        out_dim = int(args.projector.split("-")[-1])
        crit = CorInfoMaxLoss(out_dim, lam=0.01, eps=1e-8, alpha=250.0)
        projector.train()
    else:
        params = list(model.parameters())
    model = model.to(memory_format=cl)
    model.train()
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-4)

    shape = (args.batch, args.channels, args.size, args.size)
    x1 = torch.randn(shape).contiguous(memory_format=cl)
    x2 = torch.randn(shape).contiguous(memory_format=cl)
    labels = torch.randint(0, 10, (args.batch,), dtype=torch.int64)

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16")

    def step():
        opt.zero_grad(set_to_none=True)
        if args.method == "supervised":
            with autocast():
                out = model(x1)
            loss = F.cross_entropy(out.float(), labels)
            loss.backward()
            opt.step()
            return loss.item()
        with autocast():
            z1 = projector(model(x1))
            z2 = projector(model(x2))
        loss, new_state = crit.loss(z1.float(), z2.float())
        loss.backward()
        opt.step()
        crit.commit(new_state)
        return loss.item()

    for _ in range(args.warmup):
        step()
    times, losses = [], []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        losses.append(step())
        times.append(time.perf_counter() - t0)

    images = args.batch * (2 if args.method == "corinfomax" else 1)
    rates = [images / t for t in times]
    result = {
        "engine": "pytorch",
        "torch": torch.__version__,
        "arch": args.arch,
        "width": args.width,
        "stem": args.stem,
        "channels": args.channels,
        "size": args.size,
        "batch": args.batch,
        "method": args.method,
        "projector": args.projector if args.method == "corinfomax" else "",
        "threads": args.threads,
        "precision": args.precision,
        "steps": args.steps,
        "warmup": args.warmup,
        "images_per_sec": statistics.median(rates),
        "images_per_sec_mean": statistics.fmean(rates),
        "step_seconds_median": statistics.median(times),
        "step_seconds_mean": statistics.fmean(times),
        "step_seconds_min": min(times),
        "loss_last": losses[-1],
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"pytorch {result['torch']}  {args.arch} w{args.width} {args.stem} stem  {args.method}"
              f"  batch {args.batch}  {args.threads} threads")
        print(f"  images/s  median {result['images_per_sec']:.1f}  mean {result['images_per_sec_mean']:.1f}")
        print(f"  step s    median {result['step_seconds_median']:.4f}  mean {result['step_seconds_mean']:.4f}"
              f"  min {result['step_seconds_min']:.4f}")
        print(f"  loss      last {result['loss_last']:.4f}")
        print(f"  peak RSS  {result['peak_rss_bytes'] / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
