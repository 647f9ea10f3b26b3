#!/usr/bin/env python3
"""Generate torchvision / PIL reference outputs for the augmentations of package data.

Run by hand from the repository root (needs Debian's python3-torchvision
0.14 and PIL, so use the system interpreter if another python3 comes first
in PATH):

    /usr/bin/python3 tools/pytorch/gen_augment_fixtures.py

It writes into data/testdata/augment/:

  rgb32.npy     32x32x3 uint8 synthetic RGB image (HWC): colour ramps, a
                saturated disc, stripes, a grey patch (r = g = b), pure
                black/white pixels, and seeded noise
  grey28.npy    28x28 uint8 synthetic greyscale image (HW): a ramp, a ring,
                a checkerboard and noise
  <image>_<case>.npy  float32 HWC outputs of torchvision's functional ops
                on the float tensor of the image (to_tensor, x / 255), or
                uint8 outputs of the same op on the PIL image (cases *_pil)
  manifest.json the list of cases: file, image, op and its fixed parameters

so the Go test (data/augment_torch_test.go) applies our implementation of
each op with the same parameters and compares. The ops, in the order
ViewFloat applies them:

  resized_crop  F.resized_crop(img, top, left, h, w, [size, size], BICUBIC)
                on the PIL image (uint8; torchvision ignores antialias there:
                PIL always antialiases), the semantics of the reference
                recipe, which runs its transforms on PIL images; and the
                same in float on the tensor (cases without _pil): F.crop,
                then F.resize(..., BICUBIC, antialias=True) along x, clamp
                to [0, 1], along y, clamp. The clamp between the passes is
                PIL's uint8 intermediate image; F.resized_crop on a float
                tensor has no clamp at all and differs from PIL by up to
                15/255 next to sharp edges, where the bicubic lobes
                overshoot. Our pipeline uses bicubic, as the reference
                recipe does; torchvision's default interpolation is
                BILINEAR.
  hflip         F.hflip
  brightness, contrast, saturation, hue
                F.adjust_brightness / adjust_contrast / adjust_saturation /
                adjust_hue with the given factor
  jitter        those four in a given order (ColorJitter's order is a random
                permutation, ViewFloat's too)
  grayscale     F.rgb_to_grayscale(img, num_output_channels=3)
  blur          F.gaussian_blur(img, [k, k], [sigma, sigma]) (reflect padding)
  solarize      F.solarize(img, 128 / 255)
  view          a whole view: resized crop, flip, jitter in an order,
                grayscale, blur, solarize (each optional), as ViewFloat with
                its random choices fixed

All files are small (at most 12 KB each).
"""

import json
import os
import sys

try:
    import numpy as np
    import torch
    import torchvision
    import torchvision.transforms.functional as F
    from PIL import Image
    from torchvision.transforms import InterpolationMode
except ImportError:  # pragma: no cover
    sys.exit("gen_augment_fixtures.py needs torchvision, PIL and NumPy: run it with /usr/bin/python3")

OUT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data", "testdata", "augment"))


def rgb_image():
    rng = np.random.default_rng(1)
    h = w = 32
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.empty((h, w, 3))
    img[..., 0] = x / (w - 1)
    img[..., 1] = y / (h - 1)
    img[..., 2] = 0.5 + 0.5 * np.sin(x / 3.0 + y / 5.0)
    disc = (x - 20) ** 2 + (y - 11) ** 2 < 36
    img[disc] = [0.9, 0.1, 0.2]
    stripes = (y >= 22) & (y < 30) & ((x // 2) % 2 == 0)
    img[stripes] = [0.1, 0.3, 0.95]
    img[2:8, 2:8] = 0.6  # grey: r = g = b
    img[28:31, 2:5] = 0.0
    img[28:31, 5:8] = 1.0
    img = img + 0.06 * rng.standard_normal(img.shape) * (~disc)[..., None]
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)


def grey_image():
    rng = np.random.default_rng(2)
    h = w = 28
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = 0.15 + 0.7 * x / (w - 1)
    ring = np.abs(np.hypot(x - 14, y - 14) - 8) < 1.5
    img[ring] = 1.0
    checker = (x < 8) & (y > 18) & (((x // 2) + (y // 2)) % 2 == 0)
    img[checker] = 0.0
    img = img + 0.05 * rng.standard_normal(img.shape)
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)


def to_hwc(t):
    """C x H x W float tensor -> H x W x C float32 array."""
    return np.ascontiguousarray(t.permute(1, 2, 0).numpy().astype(np.float32))


def crop(t, p):
    """PIL's resized crop in float: the horizontal pass, clamped to [0, 1]
    (PIL's intermediate image is uint8), then the vertical pass, clamped.
    Each pass is F.resize with antialias=True along one axis (PyTorch's
    antialiased bicubic is PIL's filter; along an unchanged axis its taps
    are the identity)."""
    t = F.crop(t, p["top"], p["left"], p["h"], p["w"])
    t = F.resize(t, [p["h"], p["size"]], InterpolationMode.BICUBIC, antialias=True).clamp(0, 1)
    return F.resize(t, [p["size"], p["size"]], InterpolationMode.BICUBIC, antialias=True).clamp(0, 1)


def jitter(t, p):
    for fn in p["order"]:
        if fn == 0:
            t = F.adjust_brightness(t, p["brightness"])
        elif fn == 1:
            t = F.adjust_contrast(t, p["contrast"])
        elif fn == 2:
            t = F.adjust_saturation(t, p["saturation"])
        else:
            t = F.adjust_hue(t, p["hue"])
    return t


def view(t, p):
    t = crop(t, p)
    if p["flip"]:
        t = F.hflip(t)
    if p.get("order"):
        t = jitter(t, p)
    if p["gray"] and t.shape[0] == 3:
        t = F.rgb_to_grayscale(t, num_output_channels=3)
    if p["sigma"] > 0:
        t = F.gaussian_blur(t, [p["kernel"], p["kernel"]], [p["sigma"], p["sigma"]])
    if p["solarize"]:
        t = F.solarize(t, 128 / 255)
    return t


def apply(op, t, p):
    if op == "resized_crop":
        return crop(t, p)
    if op == "hflip":
        return F.hflip(t)
    if op == "brightness":
        return F.adjust_brightness(t, p["factor"])
    if op == "contrast":
        return F.adjust_contrast(t, p["factor"])
    if op == "saturation":
        return F.adjust_saturation(t, p["factor"])
    if op == "hue":
        return F.adjust_hue(t, p["factor"])
    if op == "jitter":
        return jitter(t, p)
    if op == "grayscale":
        return F.rgb_to_grayscale(t, num_output_channels=3)
    if op == "blur":
        return F.gaussian_blur(t, [p["kernel"], p["kernel"]], [p["sigma"], p["sigma"]])
    if op == "solarize":
        return F.solarize(t, p["threshold"])
    if op == "view":
        return view(t, p)
    raise ValueError(op)


CROPS = {
    "crop_down": dict(top=1, left=5, h=26, w=20, size=16),  # downscale: PIL's antialiasing stretches the kernel
    "crop_up": dict(top=4, left=2, h=12, w=17, size=24),    # upscale in both directions
    "crop_mixed": dict(top=1, left=0, h=27, w=9, size=18),  # down in y, up in x
}

COLOUR = [
    ("brightness", "brightness_up", dict(factor=1.3)),
    ("brightness", "brightness_down", dict(factor=0.65)),
    ("contrast", "contrast_down", dict(factor=0.7)),
    ("contrast", "contrast_up", dict(factor=1.35)),
    ("saturation", "saturation_up", dict(factor=1.15)),
    ("saturation", "saturation_down", dict(factor=0.8)),
    ("hue", "hue_plus", dict(factor=0.07)),
    ("hue", "hue_minus", dict(factor=-0.1)),
    ("jitter", "jitter_sbhc", dict(order=[2, 0, 3, 1], brightness=1.25, contrast=0.75, saturation=1.15, hue=0.05)),
    ("jitter", "jitter_chsb", dict(order=[1, 3, 2, 0], brightness=0.7, contrast=1.3, saturation=0.85, hue=-0.08)),
]


def main():
    os.makedirs(OUT, exist_ok=True)
    images = {"rgb32": rgb_image(), "grey28": grey_image()}
    manifest = {"generator": "tools/pytorch/gen_augment_fixtures.py", "torch_version": torch.__version__,
                "torchvision_version": torchvision.__version__, "pil_version": Image.__version__,
                "images": {}, "cases": []}
    for name, arr in images.items():
        np.save(os.path.join(OUT, name + ".npy"), arr)
        manifest["images"][name] = name + ".npy"
        t = F.to_tensor(arr)  # C x H x W float32, x / 255
        pil = Image.fromarray(arr)
        rgb = arr.ndim == 3
        side = arr.shape[0]
        cases = []
        for cname, p in CROPS.items():
            cases.append(("resized_crop", cname, p))
        cases.append(("hflip", "hflip", {}))
        for op, cname, p in COLOUR:
            if rgb or op in ("brightness", "contrast"):
                cases.append((op, cname, p))
        if rgb:
            cases.append(("grayscale", "grayscale", {}))
        cases.append(("blur", "blur_k3", dict(kernel=3, sigma=1.3)))
        cases.append(("blur", "blur_k5", dict(kernel=5, sigma=0.7)))
        cases.append(("solarize", "solarize", dict(threshold=128 / 255)))
        cases.append(("view", "view_gray_blur", dict(top=2, left=3, h=21, w=25, size=side - 4, flip=True,
                                                     order=[3, 1, 0, 2], brightness=1.2, contrast=0.8,
                                                     saturation=1.1, hue=0.04, gray=True, kernel=3,
                                                     sigma=0.9, solarize=False)))
        cases.append(("view", "view_solarize", dict(top=6, left=1, h=15, w=13, size=side, flip=False,
                                                    order=[0, 2, 1, 3], brightness=0.8, contrast=1.2,
                                                    saturation=0.9, hue=-0.06, gray=False, kernel=3,
                                                    sigma=1.7, solarize=True)))
        for op, cname, p in cases:
            out = to_hwc(apply(op, t, p))
            fname = f"{name}_{cname}.npy"
            np.save(os.path.join(OUT, fname), out)
            manifest["cases"].append({"file": fname, "image": name, "op": op, "params": p})
        # The PIL path of the resized crops (uint8 in, uint8 out).
        for cname, p in CROPS.items():
            out = F.resized_crop(pil, p["top"], p["left"], p["h"], p["w"], [p["size"], p["size"]],
                                 InterpolationMode.BICUBIC)
            out = np.asarray(out, dtype=np.uint8)
            fname = f"{name}_{cname}_pil.npy"
            np.save(os.path.join(OUT, fname), out)
            manifest["cases"].append({"file": fname, "image": name, "op": "resized_crop_pil", "params": p})
    with open(os.path.join(OUT, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=1)
        fh.write("\n")
    print("wrote", len(manifest["cases"]), "cases to", OUT)


if __name__ == "__main__":
    main()
