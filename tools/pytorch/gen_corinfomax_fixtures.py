#!/usr/bin/env python3
"""Generate PyTorch fixtures for CorInfoMax at realistic D (64 and 128).

Run by hand from the repository root (needs Debian's python3-torch, so use
the system interpreter if another python3 comes first in PATH):

    /usr/bin/python3 tools/pytorch/gen_corinfomax_fixtures.py

The small-D cases of gen_ssl_fixtures.py (D = 8 and 10) never reach the
blocked Gram path of ssl/corinfomax.go (gramUpper splits the columns in two
halves once D >= 32, i.e. in every real configuration). This script runs
the same reference loss (gen_ssl_fixtures.CorInfoMaxRef: the paper's
reference implementation written in float64 with autograd, see
docs/design.md section 1) for STEPS consecutive steps at D = 64 and D = 128
with batch N = 48 and writes, per case, ssl/testdata/corinfomax_d<D>.safetensors:

  loss        F64 [STEPS]          loss of each step
  components  F64 [STEPS, 3]       sim, cov1, cov2 of each step
  g1, g2      F32 [STEPS, N, D]    dL/dz1, dL/dz2 of each step (float64
                                   gradients rounded to float32, as the Go
                                   API returns float32 gradients)
  R1, R2      F32 [D (D + 1) / 2]  running covariance of each view after
                                   the last step, upper triangle row by row
  mu1, mu2    F32 [D]              running mean of each view after the last step
  z_check     F64 [STEPS, 2]       sum_k z[k] * (k % 7 + 1) of each view's
                                   input, to catch a generator mismatch

metadata: generator, torch_version, options (JSON of ssl.Options fields),
n, d, steps, seed.

The inputs are not stored (that would double the file size): both this
script and the Go test (ssl/fixtures_blocked_test.go) compute them with
splitmix64 on integers, so they are exactly the same float32 values:

  u(seed, k)   = ((splitmix64(seed * 2^32 + k) >> 48) - 32768) / 32768
  idx          = (step * N + i) * D + j          (step from 0)
  z1[step,i,j] = u(seed, 4 idx) + u(seed, 4 ((step * N + i) * D + j % 4) + 2)
                 + ((j % 8) - 3.5) / 8
  z2[step,i,j] = z1[step,i,j] + 0.5 u(seed, 4 idx + 1)

(a noise term, a per-row latent shared by every fourth column so that the
covariance is not isotropic, and a per-column offset so that the running
mean matters). Every value is a multiple of 2^-16 below 4 in magnitude, so
float32 holds it exactly; the script asserts that.
"""

import json
import os
import struct
import sys

try:
    import numpy as np
    import torch
except ImportError:  # pragma: no cover
    sys.exit("gen_corinfomax_fixtures.py needs PyTorch and NumPy: run it with /usr/bin/python3 (Debian python3-torch)")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_ssl_fixtures import CorInfoMaxRef  # noqa: E402  (sets the float64 default dtype)

STEPS = 3
N = 48
MASK = (1 << 64) - 1
TESTDATA = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "ssl", "testdata"))


def splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & MASK
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def u(seed, k):
    return ((splitmix64((seed << 32) + k) >> 48) - 32768) / 32768.0


def views(seed, step, n, d):
    z1 = np.empty((n, d))
    z2 = np.empty((n, d))
    for i in range(n):
        for j in range(d):
            idx = (step * n + i) * d + j
            a = u(seed, 4 * idx)
            lat = u(seed, 4 * ((step * n + i) * d + j % 4) + 2)
            z1[i, j] = a + lat + ((j % 8) - 3.5) / 8
            z2[i, j] = z1[i, j] + 0.5 * u(seed, 4 * idx + 1)
    for z in (z1, z2):
        assert np.array_equal(z.astype(np.float32).astype(np.float64), z), "input not exact in float32"
    return z1, z2


def check(z):
    k = np.arange(z.size)
    return float(np.sum(z.ravel() * (k % 7 + 1)))


def write_safetensors(path, tensors, metadata):
    """tensors: list of (name, numpy array); float64 arrays are stored as F64, float32 as F32."""
    header = {"__metadata__": metadata}
    blobs = []
    offset = 0
    for name, arr in tensors:
        if arr.dtype == np.float64:
            dtype, data = "F64", arr.astype("<f8").tobytes()
        elif arr.dtype == np.float32:
            dtype, data = "F32", arr.astype("<f4").tobytes()
        else:
            raise ValueError(f"{name}: dtype {arr.dtype}")
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    hdr = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hdr += b" " * ((8 - len(hdr) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hdr)))
        f.write(hdr)
        for b in blobs:
            f.write(b)


def run_case(d, options, seed):
    ref = CorInfoMaxRef(d, options)
    loss, comps, g1s, g2s, checks = [], [], [], [], []
    for step in range(STEPS):
        a, b = views(seed, step, N, d)
        z1 = torch.tensor(a, requires_grad=True)
        z2 = torch.tensor(b, requires_grad=True)
        l, cs = ref(z1, z2, step + 1)
        l.backward()
        loss.append(l.item())
        comps.append([float(v) for _, v in cs])
        assert [k for k, _ in cs] == ["sim", "cov1", "cov2"]
        g1s.append(z1.grad.numpy().astype(np.float32))
        g2s.append(z2.grad.numpy().astype(np.float32))
        checks.append([check(a), check(b)])
    iu = np.triu_indices(d)
    tensors = [
        ("loss", np.array(loss)),
        ("components", np.array(comps)),
        ("g1", np.stack(g1s)),
        ("g2", np.stack(g2s)),
        ("R1", ref.R[0].numpy()[iu].astype(np.float32)),
        ("R2", ref.R[1].numpy()[iu].astype(np.float32)),
        ("mu1", ref.mu[0].numpy().astype(np.float32)),
        ("mu2", ref.mu[1].numpy().astype(np.float32)),
        ("z_check", np.array(checks)),
    ]
    metadata = {
        "generator": "tools/pytorch/gen_corinfomax_fixtures.py",
        "torch_version": torch.__version__,
        "options": json.dumps(options),
        "n": str(N),
        "d": str(d),
        "steps": str(STEPS),
        "seed": str(seed),
    }
    path = os.path.join(TESTDATA, f"corinfomax_d{d}.safetensors")
    write_safetensors(path, tensors, metadata)
    print("wrote", path, os.path.getsize(path), "bytes; losses", loss)


def main():
    # The CIFAR-10 recipe's options at its projector width, D = 64.
    run_case(64, dict(Alpha=250.0, LamR=0.01, LamMu=0.01, Eps=1e-8, InitScale=1.0, Normalize=True), seed=11)
    # D = 128 (the CIFAR-100 / ImageNet-100 width) with lam_R != lam_mu, a
    # larger eps and a non-unit initial covariance, so that swapping or
    # dropping any of them shows.
    run_case(128, dict(Alpha=1000.0, LamR=0.1, LamMu=0.05, Eps=1e-6, InitScale=0.5, Normalize=True), seed=12)


if __name__ == "__main__":
    main()
