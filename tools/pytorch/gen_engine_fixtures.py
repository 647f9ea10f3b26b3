#!/usr/bin/env python3
"""Generate the PyTorch parity fixtures for package nn (nn/testdata/*.safetensors).

Run by hand with Debian's python3-torch 1.13 / python3-torchvision 0.14:

    /usr/bin/python3 tools/pytorch/gen_engine_fixtures.py

It builds torchvision's ResNet-18 (torchvision's own BasicBlock and
_make_layer, so the state_dict keys are torchvision's) with the CIFAR stem
(conv1 3x3 stride 1 padding 1, maxpool Identity) at width 8 (all channel
counts divided by 8), 3 input channels and a 10-class fc head, in
channels_last memory format. Batch-norm affine parameters and running
statistics are randomised (instead of 1/0) so that the fixture exercises
them. On a fixed batch of 4 images of 32x32 and labels it records:

  input            [4,3,32,32] F32 (NCHW), labels [4] I64
  init.<key>       every parameter and running statistic before training
  logits [4,10], loss [] (mean cross-entropy) of the first forward (train-mode BN)
  grad.<key>       every parameter gradient of that first backward
  losses [3]       the loss before each of 3 SGD steps (lr 0.1, momentum 0.9,
                   weight decay 1e-4, same batch each step, train-mode BN)
  step3.<key>      every parameter and running statistic after the 3 steps
  eval_logits [4,10]  logits of the stepped model in eval mode (running stats)

num_batches_tracked is omitted. The metadata also carries, as JSON
"keys.resnet18|34|50", the full torchvision state_dict key list with shapes
of the standard models (ImageNet stem, width 64, 1000 classes).

A second file, resnet50_w2_imagenet.safetensors, holds a ResNet-50
(Bottleneck, ImageNet stem with max-pool) at width 2 with 1 input channel and
5 classes: input [4,1,64,64], labels, init.<key>, logits, loss, grad.<key>
and after.<key> (running statistics after the forward), computed in float64.

The safetensors file is written with numpy + json (little-endian F32 / I64).
"""

import json
import os
import struct

import numpy as np
import torch
import torch.nn as nn
import torchvision
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

TESTDATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "nn", "testdata")
OUT = os.path.join(TESTDATA, "resnet18_w8_cifar.safetensors")
OUT50 = os.path.join(TESTDATA, "resnet50_w2_imagenet.safetensors")


class WidthResNet(ResNet):
    """torchvision's ResNet with base width `width` and the CIFAR or ImageNet stem.

    Only __init__ is replaced; _make_layer and forward are torchvision's.
    """

    def __init__(self, block, layers, width, in_channels, num_classes, stem="cifar"):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes = width
        self.dilation = 1
        self.groups = 1
        self.base_width = 64
        if stem == "cifar":
            self.conv1 = nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, 2 * width, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * width, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * width, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * width * block.expansion, num_classes)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)


def to_np(t):
    """A contiguous (NCHW) copy: numpy() may share memory with a parameter
    that the optimizer later updates in place."""
    return np.array(t.detach().contiguous().cpu().numpy(), copy=True, order="C")


def write_safetensors(path, tensors, metadata):
    """tensors: list of (name, numpy array); float arrays are stored as F32."""
    header = {"__metadata__": metadata}
    blobs = []
    offset = 0
    for name, arr in tensors:
        if arr.dtype == np.int64:
            dtype, data = "I64", arr.astype("<i8").tobytes()
        else:
            dtype, data = "F32", arr.astype("<f4").tobytes()
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


def state(model):
    return [(k, to_np(v)) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")]


def key_list(model):
    return json.dumps([[k, list(v.shape)] for k, v in model.state_dict().items()])


def resnet50_fixture():
    """ResNet-50 (Bottleneck, ImageNet stem with max-pool) at width 2, 1 input
    channel, 5 classes, on 4 images of 64x64 (layer4 is 2x2): one forward and backward of the
    mean cross-entropy in train-mode BN, computed in float64 (stored as F32)
    so that the reference carries no float32 error of its own."""
    torch.manual_seed(1)
    model = WidthResNet(Bottleneck, [3, 4, 6, 3], width=2, in_channels=1, num_classes=5, stem="imagenet")
    model.train()
    x = torch.randn(4, 1, 64, 64)
    labels = torch.randint(0, 5, (4,), dtype=torch.int64)
    tensors = [("input", to_np(x)), ("labels", labels.numpy())]
    tensors += [("init." + k, v) for k, v in state(model)]
    model = model.double()
    logits = model(x.double())
    loss = nn.CrossEntropyLoss()(logits, labels)
    loss.backward()
    tensors.append(("logits", to_np(logits)))
    tensors.append(("loss", np.array(loss.item(), dtype=np.float32)))
    tensors += [("grad." + k, to_np(p.grad)) for k, p in model.named_parameters()]
    tensors += [("after." + k, v) for k, v in state(model) if "running" in k]
    metadata = {
        "generator": "tools/pytorch/gen_engine_fixtures.py",
        "torch": torch.__version__,
        "model": "torchvision ResNet-50 Bottleneck [3,4,6,3], width 2, ImageNet stem, 1 channel, fc 5, float64",
    }
    write_safetensors(OUT50, tensors, metadata)
    print("wrote", os.path.normpath(OUT50), os.path.getsize(OUT50), "bytes; loss", loss.item())


def main():
    torch.manual_seed(0)
    model = WidthResNet(BasicBlock, [2, 2, 2, 2], width=8, in_channels=3, num_classes=10)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    model = model.to(memory_format=torch.channels_last)
    model.train()

    x = torch.randn(4, 3, 32, 32).to(memory_format=torch.channels_last)
    labels = torch.randint(0, 10, (4,), dtype=torch.int64)

    tensors = [("input", to_np(x)), ("labels", labels.numpy())]
    tensors += [("init." + k, v) for k, v in state(model)]

    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    for step in range(3):
        opt.zero_grad()
        logits = model(x)
        loss = loss_fn(logits, labels)
        loss.backward()
        losses.append(loss.item())
        if step == 0:
            tensors.append(("logits", to_np(logits)))
            tensors.append(("loss", np.array(loss.item(), dtype=np.float32)))
            tensors += [("grad." + k, to_np(p.grad)) for k, p in model.named_parameters()]
        opt.step()
    tensors.append(("losses", np.array(losses, dtype=np.float32)))
    tensors += [("step3." + k, v) for k, v in state(model)]
    model.eval()
    with torch.no_grad():
        tensors.append(("eval_logits", to_np(model(x))))

    metadata = {
        "generator": "tools/pytorch/gen_engine_fixtures.py",
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "model": "torchvision ResNet-18 BasicBlock [2,2,2,2], width 8, CIFAR stem, 3 channels, fc 10, channels_last",
        "sgd": "lr 0.1 momentum 0.9 weight_decay 1e-4, 3 steps on the same batch, train-mode BN",
    }
    for arch in ("resnet18", "resnet34", "resnet50"):
        metadata["keys." + arch] = key_list(getattr(torchvision.models, arch)())
    write_safetensors(OUT, tensors, metadata)
    print("wrote", os.path.normpath(OUT), os.path.getsize(OUT), "bytes; losses", losses)
    resnet50_fixture()


if __name__ == "__main__":
    main()
