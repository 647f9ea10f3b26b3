#!/usr/bin/python3
"""Checks that a PyTorch user gets our features from our checkpoint.

The README claims: a PyTorch user loads our backbone with safetensors +
resnet.load_state_dict(strict=False) and gets the same features. This script
does exactly that and compares with the features our Go encoder wrote:

    corinfomax embed --checkpoint RUN --data fashion-mnist:/usr/share/datasets/fashion-mnist \
        --out /tmp/features.npy --limit 256
    /usr/bin/python3 tools/pytorch/check_checkpoint.py --checkpoint RUN/checkpoint.safetensors \
        --features /tmp/features.npy \
        --images /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz

Steps: read the safetensors file (the safetensors package if importable,
else a small numpy reader); build torchvision's ResNet with the metadata's
arch, stem, width and in_channels (bench_step.build_resnet); load it with
load_state_dict(strict=False) and require that the missing keys are only
fc.* / *.num_batches_tracked and the unexpected ones only projector.*,
optimizer.*, method.*; eval mode; fc = Identity; embed the first N images
(N = rows of features.npy), scaled to [0,1] and normalised with the
metadata's mean/std (no resizing), NHWC -> NCHW; compare.

Exit status: 0 when max|ours - torch| <= 1e-4 * max(1, max|feature|), 1 when
the features differ by more, 2 when the checkpoint or inputs are unusable
(bad file, wrong keys or shapes, too few images, channel mismatch).

    /usr/bin/python3 tools/pytorch/check_checkpoint.py --self-test

writes a small checkpoint from PyTorch (random-init ResNet-18 width 8,
1 input channel, with projector / optimizer / method tensors and the
metadata), reads it back, checks the reader bit for bit, runs the check on
IDX and .npy images and checks that wrong features, missing or foreign
tensors and a wrong width are reported.
"""

import argparse
import gzip
import json
import os
import struct
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_step import build_resnet  # noqa: E402

META_MODEL = "corinfomax.model"
META_NORM = "corinfomax.norm"
META_SIZE = "corinfomax.size"
IGNORED_PREFIXES = ("projector.", "optimizer.", "method.")

# safetensors dtype -> little-endian numpy dtype (BF16 is handled apart).
NP_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
    "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?",
}


class CheckError(Exception):
    """The checkpoint or the inputs cannot be checked (exit status 2)."""


# ---------------------------------------------------------------- reading

def read_safetensors_numpy(path):
    """Reads a safetensors file with numpy: returns ({name: ndarray}, metadata)."""
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 8:
        raise CheckError(f"{path}: {len(buf)} bytes, too short for a safetensors header")
    (n,) = struct.unpack("<Q", buf[:8])
    if n > len(buf) - 8:
        raise CheckError(f"{path}: header length {n} exceeds the file ({len(buf)} bytes)")
    try:
        header = json.loads(buf[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckError(f"{path}: header is not JSON: {e}") from e
    metadata = header.pop("__metadata__", None) or {}
    data = memoryview(buf)[8 + n:]
    tensors = {}
    for name, info in header.items():
        dtype, shape, (begin, end) = info["dtype"], list(info["shape"]), info["data_offsets"]
        count = int(np.prod(shape, dtype=np.int64))
        if not 0 <= begin <= end <= len(data):
            raise CheckError(f"{path}: tensor {name}: data_offsets {begin},{end} outside the data ({len(data)} bytes)")
        raw = data[begin:end]
        if dtype == "BF16":
            if end - begin != 2 * count:
                raise CheckError(f"{path}: tensor {name}: {end - begin} bytes for {count} BF16 values")
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32)
        elif dtype in NP_DTYPES:
            dt = np.dtype(NP_DTYPES[dtype])
            if end - begin != dt.itemsize * count:
                raise CheckError(f"{path}: tensor {name}: {end - begin} bytes for {count} {dtype} values")
            arr = np.frombuffer(raw, dtype=dt).astype(dt.newbyteorder("="))
        else:
            raise CheckError(f"{path}: tensor {name}: unsupported dtype {dtype}")
        tensors[name] = arr.reshape(shape)
    return tensors, metadata


def read_safetensors_package(path):
    """Reads a safetensors file with the safetensors package (torch tensors -> numpy)."""
    from safetensors import safe_open
    tensors = {}
    with safe_open(path, framework="pt") as f:
        metadata = f.metadata() or {}
        for name in f.keys():
            t = f.get_tensor(name)
            if t.dtype == torch.bfloat16:
                t = t.float()
            tensors[name] = t.numpy()
    return tensors, metadata


def read_checkpoint(path, reader="auto"):
    """Returns (tensors, metadata, reader name); reader is auto, safetensors or numpy."""
    if reader in ("auto", "safetensors"):
        try:
            import safetensors  # noqa: F401
        except ImportError:
            if reader == "safetensors":
                raise CheckError("the safetensors package is not installed (use --reader numpy)")
        else:
            try:
                t, m = read_safetensors_package(path)
            except Exception as e:  # the package raises its own error types
                raise CheckError(f"{path}: safetensors: {e}") from e
            return t, m, "safetensors"
    t, m = read_safetensors_numpy(path)
    return t, m, "numpy"


def model_spec(metadata, path):
    """The corinfomax.model metadata as a dict, checked."""
    if META_MODEL not in metadata:
        raise CheckError(f"{path}: no {META_MODEL!r} metadata: not a corinfomax checkpoint")
    try:
        spec = json.loads(metadata[META_MODEL])
    except json.JSONDecodeError as e:
        raise CheckError(f"{path}: metadata {META_MODEL}: {e}") from e
    for k in ("arch", "stem", "width", "in_channels"):
        if k not in spec:
            raise CheckError(f"{path}: metadata {META_MODEL} lacks {k!r}")
    return spec


def norm_of(metadata, path):
    """(mean, std) float32 arrays from the corinfomax.norm metadata."""
    if META_NORM not in metadata:
        raise CheckError(f"{path}: no {META_NORM!r} metadata; pass --mean and --std")
    norm = json.loads(metadata[META_NORM])
    mean = norm.get("Mean", norm.get("mean"))
    std = norm.get("Std", norm.get("std"))
    if not mean or not std:
        raise CheckError(f"{path}: metadata {META_NORM} = {metadata[META_NORM]!r} lacks Mean/Std")
    return np.asarray(mean, np.float32), np.asarray(std, np.float32)


# ---------------------------------------------------------------- model

def load_backbone(tensors, spec, path):
    """Builds the ResNet of spec, loads it with strict=False and checks the keys.

    Returns (model in eval mode with fc = Identity, missing keys, unexpected keys).
    """
    num_classes = 10
    if "fc.weight" in tensors:
        num_classes = tensors["fc.weight"].shape[0]
    model = build_resnet(spec["arch"], int(spec["width"]), int(spec["in_channels"]), spec["stem"],
                         num_classes=num_classes)
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tensors.items()}
    bad_dtype = [k for k, v in tensors.items()
                 if not k.startswith(IGNORED_PREFIXES) and v.dtype != np.float32 and "num_batches_tracked" not in k]
    if bad_dtype:
        raise CheckError(f"{path}: backbone tensors not F32: {', '.join(bad_dtype[:5])}")
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shape mismatches raise even with strict=False
        raise CheckError(f"{path}: load_state_dict: {e}") from e
    missing = [k for k in result.missing_keys if not (k.startswith("fc.") or k.endswith("num_batches_tracked"))]
    unexpected = [k for k in result.unexpected_keys if not k.startswith(IGNORED_PREFIXES)]
    if missing:
        raise CheckError(f"{path}: backbone tensors missing from the file: {', '.join(missing[:8])}"
                         + (f" and {len(missing) - 8} more" if len(missing) > 8 else ""))
    if unexpected:
        raise CheckError(f"{path}: tensors that are not part of {spec['arch']} (ignoring projector./optimizer./method.): "
                         + ", ".join(unexpected[:8]) + (f" and {len(unexpected) - 8} more" if len(unexpected) > 8 else ""))
    model.fc = nn.Identity()
    model.eval()
    return model, result.missing_keys, result.unexpected_keys


def embed(model, images_nhwc, mean, std, batch=256):
    """Features of uint8 NHWC images: /255, (x - mean) / std, NHWC -> NCHW, forward."""
    out = []
    with torch.no_grad():
        for i in range(0, len(images_nhwc), batch):
            x = images_nhwc[i:i + batch].astype(np.float32) / np.float32(255)
            x = (x - mean) / std
            x = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
            out.append(model(x).numpy())
    return np.concatenate(out, axis=0)


# ---------------------------------------------------------------- images

def read_idx(path):
    """Reads an IDX file of unsigned bytes (optionally .gz) as an ndarray."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise CheckError(f"{path}: not an IDX file (bad magic)")
    if raw[2] != 0x08:
        raise CheckError(f"{path}: IDX element type 0x{raw[2]:02x}, want 0x08 (unsigned byte)")
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise CheckError(f"{path}: IDX dims {dims} need {int(np.prod(dims))} bytes, file has {body.size}")
    return body.reshape(dims)


def read_images(path):
    """uint8 NHWC images from an IDX(.gz) file or a .npy array (N,H,W or N,H,W,C)."""
    if path.endswith(".npy"):
        arr = np.load(path)
    else:
        arr = read_idx(path).copy()  # writable, for torch.from_numpy
    if arr.dtype != np.uint8:
        raise CheckError(f"{path}: images have dtype {arr.dtype}, want uint8")
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4:
        raise CheckError(f"{path}: images have shape {arr.shape}, want N,H,W or N,H,W,C")
    return arr


# ---------------------------------------------------------------- check

def check(checkpoint, features_path, images_path, reader="auto", mean=None, std=None, threads=2, quiet=False):
    """Runs the check and returns the exit status (0 pass, 1 features differ)."""
    torch.set_num_threads(threads)
    tensors, metadata, used = read_checkpoint(checkpoint, reader)
    spec = model_spec(metadata, checkpoint)
    if mean is None or std is None:
        mean, std = norm_of(metadata, checkpoint)
    else:
        mean, std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    model, missing, unexpected = load_backbone(tensors, spec, checkpoint)

    want = np.load(features_path)
    if want.ndim != 2:
        raise CheckError(f"{features_path}: shape {want.shape}, want N x F")
    images = read_images(images_path)
    n = want.shape[0]
    if len(images) < n:
        raise CheckError(f"{images_path}: {len(images)} images, {features_path} has {n} rows")
    c = images.shape[3]
    if c != int(spec["in_channels"]):
        raise CheckError(f"{images_path}: {c} channels, the model takes {spec['in_channels']}")
    if mean.size not in (1, c) or std.size not in (1, c):
        raise CheckError(f"normalisation has {mean.size} means / {std.size} stds for {c} channels")
    got = embed(model, images[:n], mean, std)
    if got.shape != want.shape:
        raise CheckError(f"features: PyTorch gives {got.shape}, {features_path} has {want.shape}")

    want64, got64 = want.astype(np.float64), got.astype(np.float64)
    diff = np.abs(got64 - want64)
    max_abs = float(diff.max())
    scale = float(np.abs(want64).max())
    tol = 1e-4 * max(1.0, scale)
    rel_fro = float(np.linalg.norm(got64 - want64) / max(np.linalg.norm(want64), 1e-30))
    worst = np.unravel_index(int(diff.argmax()), diff.shape)
    ok = max_abs <= tol
    if not quiet:
        size = metadata.get(META_SIZE, "?")
        print(f"checkpoint   {checkpoint}  (reader: {used}, {len(tensors)} tensors)")
        print(f"model        {spec['arch']} stem={spec['stem']} width={spec['width']} in_channels={spec['in_channels']}"
              f"  trained size {size}")
        print(f"load         strict=False: missing {len(missing)} (fc.* / num_batches_tracked),"
              f" unexpected {len(unexpected)} (projector./optimizer./method.)")
        print(f"images       {images_path}: {n} of {len(images)}, {images.shape[1]}x{images.shape[2]}x{c},"
              f" mean {[round(float(v), 6) for v in mean]} std {[round(float(v), 6) for v in std]}")
        print(f"features     {want.shape[0]} x {want.shape[1]}, max|feature| {scale:.6g}")
        print(f"difference   max abs {max_abs:.3g} at {tuple(int(i) for i in worst)},"
              f" mean abs {float(diff.mean()):.3g}, relative (Frobenius) {rel_fro:.3g}, max abs / max|f| "
              f"{max_abs / max(scale, 1e-30):.3g}")
        print(f"result       {'PASS' if ok else 'FAIL'} (tolerance 1e-4 * max(1, max|feature|) = {tol:.3g})")
    return 0 if ok else 1


# ---------------------------------------------------------------- self-test

def write_safetensors(path, tensors, metadata):
    """Writes [(name, ndarray)] as safetensors (F32, F64, I64), numpy + json only."""
    codes = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64", np.dtype(np.int64): "I64"}
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, arr in tensors:
        data = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": codes[arr.dtype], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    hdr = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hdr += b" " * ((8 - len(hdr) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hdr)))
        f.write(hdr)
        for b in blobs:
            f.write(b)


def write_idx_gz(path, arr):
    """Writes a uint8 array as a gzipped IDX file."""
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 0x08, arr.ndim]))
        f.write(struct.pack(">" + "I" * arr.ndim, *arr.shape))
        f.write(np.ascontiguousarray(arr, dtype=np.uint8).tobytes())


def self_test(tmpdir):
    """Self-consistency test of reader, builder, loader and check; returns failures."""
    from bench_step import build_projector, feature_dim
    failures = []

    def expect(cond, what):
        print(f"  {'ok  ' if cond else 'FAIL'} {what}")
        if not cond:
            failures.append(what)

    torch.manual_seed(0)
    spec = {"arch": "resnet18", "stem": "cifar", "width": 8, "in_channels": 1, "projector": "64-64-16",
            "projector_bn": False, "zero_init_residual": True}
    model = build_resnet("resnet18", 8, 1, "cifar", num_classes=10)
    with torch.no_grad():  # non-trivial BN so that eval mode matters
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    projector = build_projector(feature_dim("resnet18", 8), spec["projector"])
    # Like our Go checkpoints: backbone without fc and num_batches_tracked,
    # plus projector, optimizer and method state.
    tensors = [(k, v.detach().numpy().copy()) for k, v in model.state_dict().items()
               if not k.startswith("fc.") and not k.endswith("num_batches_tracked")]
    tensors += [("projector." + k, v.detach().numpy().copy()) for k, v in projector.state_dict().items()]
    tensors += [("optimizer.momentum.conv1.weight", np.random.default_rng(1).standard_normal((8, 1, 3, 3)).astype(np.float32)),
                ("optimizer.step", np.array([7], dtype=np.int64)),
                ("method.R1", np.eye(16, dtype=np.float64))]
    metadata = {"corinfomax.format": "1", META_MODEL: json.dumps(spec), META_SIZE: "28",
                META_NORM: json.dumps({"Mean": [0.2860], "Std": [0.3530]})}
    ckpt = os.path.join(tmpdir, "ckpt.safetensors")
    write_safetensors(ckpt, tensors, metadata)

    print("reader")
    got, meta = read_safetensors_numpy(ckpt)
    expect(meta == metadata, "metadata read back equal")
    expect(list(got) == [k for k, _ in tensors], "tensor names read back in order")
    expect(all(got[k].dtype == v.dtype and got[k].shape == v.shape and np.array_equal(got[k], v) for k, v in tensors),
           "every tensor read back bit-exact with its dtype and shape")
    try:
        import safetensors  # noqa: F401
        pkg, pmeta = read_safetensors_package(ckpt)
        expect(pmeta == meta and all(np.array_equal(pkg[k], got[k]) for k in got), "safetensors package agrees")
    except ImportError:
        print("  skip safetensors package not installed; numpy reader only")
    bf = os.path.join(tmpdir, "bf16.safetensors")
    vals = np.array([1.0, -2.5, 0.15625], np.float32)
    hdr = json.dumps({"x": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]}}).encode()
    with open(bf, "wb") as f:
        f.write(struct.pack("<Q", len(hdr)) + hdr + (vals.view(np.uint32) >> 16).astype("<u2").tobytes())
    expect(np.array_equal(read_safetensors_numpy(bf)[0]["x"], vals), "BF16 decoded")
    trunc = os.path.join(tmpdir, "trunc.safetensors")
    with open(ckpt, "rb") as f, open(trunc, "wb") as g:
        g.write(f.read()[:-4])
    try:
        read_safetensors_numpy(trunc)
        expect(False, "truncated file rejected")
    except CheckError as e:
        expect("data_offsets" in str(e), f"truncated file rejected ({e})")

    print("builder and loader")
    loaded, missing, unexpected = load_backbone(got, spec, ckpt)
    # torch 1.13's BatchNorm fills an absent num_batches_tracked itself, so
    # only fc.* is reported missing.
    expect(sorted(missing) == ["fc.bias", "fc.weight"], f"missing keys are exactly fc.* ({missing})")
    expect(all(k.startswith(IGNORED_PREFIXES) for k in unexpected) and len(unexpected) == 3 + len(projector.state_dict()),
           f"unexpected keys are exactly projector./optimizer./method. ({len(unexpected)})")
    src = model.state_dict()
    expect(all(torch.equal(v, src[k]) for k, v in loaded.state_dict().items() if not k.endswith("num_batches_tracked")),
           "loaded backbone equals the source model")

    # Images: random 28x28 grey, as IDX .gz and .npy; reference features from
    # the in-memory model (eval, fc removed, same normalisation).
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, size=(40, 28, 28), dtype=np.uint8)
    idx_path, npy_path = os.path.join(tmpdir, "images-idx3-ubyte.gz"), os.path.join(tmpdir, "images.npy")
    write_idx_gz(idx_path, images)
    np.save(npy_path, images[..., None])
    expect(np.array_equal(read_images(idx_path)[..., 0], images), "IDX .gz images read back")
    ref = build_resnet("resnet18", 8, 1, "cifar")
    ref.load_state_dict(model.state_dict())
    ref.fc = nn.Identity()
    ref.eval()
    with torch.no_grad():
        x = (torch.from_numpy(images[:32]).float().unsqueeze(1) / 255 - 0.2860) / 0.3530
        feats = ref(x).numpy()
    expect(feats.shape == (32, 64) and np.isfinite(feats).all() and feats.std() > 0, f"features {feats.shape} finite, non-constant")
    feat_path = os.path.join(tmpdir, "features.npy")
    np.save(feat_path, feats.astype(np.float32))

    print("check (pass expected)")
    expect(check(ckpt, feat_path, idx_path) == 0, "IDX images: PASS")
    expect(check(ckpt, feat_path, npy_path, reader="numpy", quiet=True) == 0, ".npy images: PASS")
    fm = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
    if os.path.exists(fm):
        real = read_images(fm)
        expect(real.shape == (10000, 28, 28, 1), f"Fashion-MNIST t10k images {real.shape}")
        with torch.no_grad():
            xf = (torch.from_numpy(real[:16, ..., 0]).float().unsqueeze(1) / 255 - 0.2860) / 0.3530
            np.save(os.path.join(tmpdir, "fm_features.npy"), ref(xf).numpy())
        expect(check(ckpt, os.path.join(tmpdir, "fm_features.npy"), fm, quiet=True) == 0, "Fashion-MNIST t10k: PASS")

    print("check (failure expected)")
    bad = feats.copy()
    bad[3, 5] += 1e-3 * max(1.0, float(np.abs(feats).max()))
    np.save(os.path.join(tmpdir, "bad.npy"), bad)
    expect(check(ckpt, os.path.join(tmpdir, "bad.npy"), idx_path, quiet=True) == 1, "perturbed feature: exit 1")

    def rejected(name, tens, meta, needle):
        path = os.path.join(tmpdir, name + ".safetensors")
        write_safetensors(path, tens, meta)
        try:
            check(path, feat_path, idx_path, quiet=True)
            expect(False, f"{name}: rejected")
        except CheckError as e:
            expect(needle in str(e), f"{name}: rejected ({str(e)[len(path) + 2:][:90]})")

    rejected("missing", [t for t in tensors if t[0] != "layer2.1.conv1.weight"], metadata, "layer2.1.conv1.weight")
    rejected("foreign", tensors + [("layer5.0.conv1.weight", np.zeros((2, 2), np.float32))], metadata, "layer5.0.conv1.weight")
    rejected("width", tensors, dict(metadata, **{META_MODEL: json.dumps(dict(spec, width=16))}), "size mismatch")
    rejected("nometa", tensors, {}, META_MODEL)
    rgb_path = os.path.join(tmpdir, "rgb.npy")
    np.save(rgb_path, np.zeros((40, 28, 28, 3), np.uint8))
    try:
        check(ckpt, feat_path, rgb_path, quiet=True)
        expect(False, "3-channel images for a 1-channel model rejected")
    except CheckError as e:
        expect("channels" in str(e), f"3-channel images for a 1-channel model rejected ({e})")

    print("builder vs torchvision")
    import torchvision
    for arch in ("resnet18", "resnet50"):
        torch.manual_seed(3)
        tv = getattr(torchvision.models, arch)()
        ours = build_resnet(arch, 64, 3, "imagenet", num_classes=1000)
        same_keys = [(k, tuple(v.shape)) for k, v in ours.state_dict().items()] == \
                    [(k, tuple(v.shape)) for k, v in tv.state_dict().items()]
        ours.load_state_dict(tv.state_dict())
        ours.eval(), tv.eval()
        with torch.no_grad():
            xi = torch.randn(2, 3, 64, 64)
            d = float((ours(xi) - tv(xi)).abs().max())
        expect(same_keys and d == 0.0, f"{arch} width 64 imagenet stem: torchvision's keys/shapes and outputs (max diff {d})")
    return failures


def main(argv=None):
    p = argparse.ArgumentParser(description="Check that PyTorch reproduces our backbone features from a checkpoint.")
    p.add_argument("--checkpoint", help="our .safetensors checkpoint (run directory: RUN/checkpoint.safetensors)")
    p.add_argument("--features", help="features.npy from `corinfomax embed` (float32 N x F)")
    p.add_argument("--images", help="IDX images (.gz ok) such as Fashion-MNIST's, or a uint8 .npy (N,H,W[,C])")
    p.add_argument("--reader", default="auto", choices=["auto", "safetensors", "numpy"])
    p.add_argument("--mean", type=float, nargs="+", help="override the metadata's normalisation mean")
    p.add_argument("--std", type=float, nargs="+", help="override the metadata's normalisation std")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--self-test", action="store_true", help="self-consistency test on a file written here")
    args = p.parse_args(argv)
    if args.self_test:
        torch.set_num_threads(args.threads)
        with tempfile.TemporaryDirectory() as d:
            failures = self_test(d)
        print(f"self-test: {'PASS' if not failures else f'{len(failures)} FAILED'}")
        return 1 if failures else 0
    if not (args.checkpoint and args.features and args.images):
        p.error("--checkpoint, --features and --images are required (or --self-test)")
    if os.path.isdir(args.checkpoint):
        args.checkpoint = os.path.join(args.checkpoint, "checkpoint.safetensors")
    try:
        return check(args.checkpoint, args.features, args.images, args.reader, args.mean, args.std, args.threads)
    except (CheckError, OSError, ValueError) as e:
        print(f"check_checkpoint: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
