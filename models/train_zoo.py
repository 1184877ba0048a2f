#!/usr/bin/python3
"""Train the rangeguard model zoo: small Fashion-MNIST classifiers exported to ONNX.

Every model takes raw float32 pixels in [0, 255], shape [N, 1, 28, 28] (input "input",
dynamic batch axis "N") and returns logits [N, 10] (output "logits").  The normalisation
(x / 255, minus the training-set mean, divided by its std) is the first layer *inside*
each graph, so any runtime -- rangeguard's C++ IDX reader, ONNX Runtime, a fault-injection
campaign -- can feed the raw test set without knowing per-model preprocessing, and the
activation ranges recorded during calibration cover the whole graph that is deployed.

The models between them use each of the activations ReLU, SiLU/Swish, HardSwish, PReLU, ELU,
GELU, Sigmoid, Tanh and LeakyReLU as their main activation, over LeNet-style, plain VGG-style,
residual (BatchNorm), depthwise-separable (BatchNorm), MLP and Vision Transformer
architectures.  BatchNormalization is kept as its own ONNX node by default (export with
training=PRESERVE on an eval-mode model, so training_mode=0); pass --fold-bn to let the
exporter fold it into the preceding Conv instead.

Data: Debian's dataset-fashion-mnist package (/usr/share/datasets/fashion-mnist, IDX+gzip).
Training is seeded per model (seed = base seed + the model's fixed index) and uses
deterministic algorithms, so a rerun with the same thread count reproduces the same
weights, whether the model is trained alone (--only) or with the others.

Rerun (uses Debian's interpreter, which has python3-torch / -torchvision / -onnx):
    /usr/bin/python3 models/train_zoo.py                      # all models, ~30 min, 1 thread
    /usr/bin/python3 models/train_zoo.py --only vit_gelu      # one model (or NAME,NAME)
    /usr/bin/python3 models/train_zoo.py --list               # names and settings
The ONNX files and models/zoo.json are (re)written under --out (default: this folder);
zoo.json entries of models not retrained are kept.
"""

import argparse
import ctypes
import gzip
import hashlib
import json
import math
import os
import sys
import time
import warnings


def _keep_freed_memory():
    """Stop glibc from returning every freed activation buffer to the kernel: by default
    buffers over 128 KiB are mmap'd and unmapped, and each training step then page-faults
    its activations in again (measured: ~4x slower steps, a third of the time in the
    kernel).  Raise the mmap and trim thresholds (32 MiB is the largest mmap threshold
    glibc accepts on 64-bit)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 * 1024 * 1024)    # M_MMAP_THRESHOLD
        libc.mallopt(-1, 512 * 1024 * 1024)   # M_TRIM_THRESHOLD
    except OSError:
        pass


_keep_freed_memory()

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

DATA_DIR = "/usr/share/datasets/fashion-mnist"
# Mean and std of the 60,000 training images scaled to [0, 1] (computed once; printed by
# the script as a check).  Baked into every graph as constants.
FMNIST_MEAN = 0.2860
FMNIST_STD = 0.3530
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
BASE_SEED = 20240601


# ----------------------------------------------------------------------------- data

def read_idx(path):
    """Read a gzip'd IDX file (MNIST format) into a numpy array."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    dtype_code, ndim = (magic >> 8) & 0xFF, magic & 0xFF
    if magic >> 16 != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {magic:#x})")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{path}: expected {dims}, got {arr.size} bytes")
    return arr.reshape(dims)


def load_split(split):
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(os.path.join(DATA_DIR, f"{prefix}-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(DATA_DIR, f"{prefix}-labels-idx1-ubyte.gz"))
    # float32 in [0, 255], [N, 1, 28, 28]: exactly what the exported graphs take.
    x = torch.from_numpy(x.astype(np.float32)).unsqueeze(1)
    y = torch.from_numpy(y.astype(np.int64))
    return x, y


# ----------------------------------------------------------------------------- layers

class Normalize(nn.Module):
    """Raw pixels [0, 255] -> (x / 255 - mean) / std.  Exports as Div, Sub, Div."""

    def __init__(self, mean=FMNIST_MEAN, std=FMNIST_STD):
        super().__init__()
        self.mean, self.std = mean, std

    def forward(self, x):
        return (x / 255.0 - self.mean) / self.std


def make_act(kind, channels=None):
    if kind == "relu":
        return nn.ReLU()
    if kind == "swish":
        return nn.SiLU()            # exports as x * Sigmoid(x)
    if kind == "hardswish":
        return nn.Hardswish()       # exports as HardSwish (opset >= 14)
    if kind == "prelu":
        return nn.PReLU(channels if channels else 1, init=0.25)  # per-channel slope
    if kind == "elu":
        return nn.ELU()
    if kind == "gelu":
        return nn.GELU()            # exact form: exports as the Erf decomposition
    if kind == "sigmoid":
        return nn.Sigmoid()
    if kind == "tanh":
        return nn.Tanh()
    if kind == "leakyrelu":
        return nn.LeakyReLU(0.1)
    raise ValueError(kind)


# ----------------------------------------------------------------------------- models

class LeNet(nn.Module):
    """LeNet-5 style: two 5x5 conv + max-pool stages, three fully connected layers."""

    def __init__(self, act, c1=16, c2=32, f1=120, f2=84):
        super().__init__()
        self.norm = Normalize()
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 5, padding=2), make_act(act, c1), nn.MaxPool2d(2),   # 14x14
            nn.Conv2d(c1, c2, 5), make_act(act, c2), nn.MaxPool2d(2),            # 5x5
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c2 * 25, f1), make_act(act, f1),
            nn.Linear(f1, f2), make_act(act, f2),
            nn.Linear(f2, 10),
        )

    def forward(self, x):
        return self.classifier(self.features(self.norm(x)))


class PlainCNN(nn.Module):
    """VGG-style: 3x3 conv stacks without normalisation, max-pool, a small FC head."""

    def __init__(self, act, c=(8, 32, 64), hidden=128):
        super().__init__()
        c1, c2, c3 = c
        self.norm = Normalize()
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), make_act(act, c1), nn.MaxPool2d(2),   # 14x14
            nn.Conv2d(c1, c2, 3, padding=1), make_act(act, c2), nn.MaxPool2d(2),  # 7x7
            nn.Conv2d(c2, c3, 3, padding=1), make_act(act, c3), nn.MaxPool2d(2),  # 3x3
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(c3 * 9, hidden), make_act(act, hidden), nn.Linear(hidden, 10))

    def forward(self, x):
        return self.classifier(self.features(self.norm(x)))


def conv_bn(cin, cout, k, stride=1, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    """ResNet basic block: conv-BN-act-conv-BN (+ shortcut), act."""

    def __init__(self, act, cin, cout, stride):
        super().__init__()
        self.conv1 = conv_bn(cin, cout, 3, stride)
        self.act1 = make_act(act, cout)
        self.conv2 = conv_bn(cout, cout, 3)
        self.shortcut = (conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout
                         else nn.Identity())
        self.act2 = make_act(act, cout)

    def forward(self, x):
        y = self.conv2(self.act1(self.conv1(x)))
        return self.act2(y + self.shortcut(x))


class ResNet(nn.Module):
    """Small residual CNN with BatchNorm: stem, three stages (28, 14, 7), global average pool."""

    def __init__(self, act, widths=(16, 32, 64), stem_stride=2):
        super().__init__()
        w1, w2, w3 = widths
        self.norm = Normalize()
        self.stem = nn.Sequential(conv_bn(1, w1, 3, stem_stride), make_act(act, w1))  # 14x14
        self.layers = nn.Sequential(
            BasicBlock(act, w1, w1, 1),     # 14x14
            BasicBlock(act, w1, w2, 2),     # 7x7
            BasicBlock(act, w2, w3, 2),     # 4x4
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(w3, 10)

    def forward(self, x):
        x = self.layers(self.stem(self.norm(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


class DWSeparable(nn.Module):
    """MobileNet-v1 block: depthwise 3x3 conv-BN-act, pointwise 1x1 conv-BN-act."""

    def __init__(self, act, cin, cout, stride):
        super().__init__()
        self.dw = conv_bn(cin, cin, 3, stride, groups=cin)
        self.act1 = make_act(act, cin)
        self.pw = conv_bn(cin, cout, 1)
        self.act2 = make_act(act, cout)

    def forward(self, x):
        return self.act2(self.pw(self.act1(self.dw(x))))


class MobileNet(nn.Module):
    """Depthwise-separable CNN with BatchNorm (MobileNet-v1 style), global average pool."""

    def __init__(self, act, cfg=((32, 1), (64, 2), (64, 1), (128, 2), (128, 1)), stem=16,
                 stem_stride=2):
        super().__init__()
        self.norm = Normalize()
        blocks = [conv_bn(1, stem, 3, stem_stride), make_act(act, stem)]
        cin = stem
        for cout, stride in cfg:
            blocks.append(DWSeparable(act, cin, cout, stride))
            cin = cout
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, 10)

    def forward(self, x):
        x = self.features(self.norm(x))
        return self.fc(torch.flatten(self.pool(x), 1))


class MLP(nn.Module):
    def __init__(self, act, hidden=(256, 128)):
        super().__init__()
        self.norm = Normalize()
        layers, cin = [nn.Flatten()], 28 * 28
        for h in hidden:
            layers += [nn.Linear(cin, h), make_act(act, h)]
            cin = h
        layers.append(nn.Linear(cin, 10))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(self.norm(x))


class Attention(nn.Module):
    """Multi-head self-attention with plain MatMul/Softmax (exports without fused ops).

    Reshapes use -1 for the batch axis and constant token/head sizes, so the exported
    graph has constant Reshape shapes and no Shape/Gather arithmetic."""

    def __init__(self, dim, heads, tokens):
        super().__init__()
        self.h, self.d, self.t, self.dim = heads, dim // heads, tokens, dim
        self.scale = self.d ** -0.5
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def split(self, x):                      # [N, T, D] -> [N, H, T, d]
        return x.reshape(-1, self.t, self.h, self.d).transpose(1, 2)

    def forward(self, x):
        q, k, v = self.split(self.q(x)), self.split(self.k(x)), self.split(self.v(x))
        attn = torch.softmax(torch.matmul(q, k.transpose(2, 3)) * self.scale, dim=-1)
        out = torch.matmul(attn, v).transpose(1, 2).reshape(-1, self.t, self.dim)
        return self.proj(out)


class EncoderBlock(nn.Module):
    """Pre-norm transformer encoder block: x + MHSA(LN(x)); x + MLP(LN(x)), MLP with GELU."""

    def __init__(self, act, dim, heads, tokens, mlp_ratio):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, tokens)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim * mlp_ratio), make_act(act),
                                 nn.Linear(dim * mlp_ratio, dim))

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class ViT(nn.Module):
    """Small Vision Transformer: conv patch embedding, learned position embedding,
    pre-norm encoder blocks, final LayerNorm, mean over tokens, linear head."""

    def __init__(self, act, patch=7, dim=64, depth=4, heads=4, mlp_ratio=2):
        super().__init__()
        assert 28 % patch == 0
        self.grid = 28 // patch
        self.tokens, self.dim = self.grid * self.grid, dim
        self.norm = Normalize()
        self.patch = nn.Conv2d(1, dim, patch, stride=patch)
        self.pos = nn.Parameter(torch.zeros(1, self.tokens, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.blocks = nn.Sequential(*[EncoderBlock(act, dim, heads, self.tokens, mlp_ratio)
                                      for _ in range(depth)])
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 10)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.patch(self.norm(x))                                    # [N, D, g, g]
        x = x.reshape(-1, self.dim, self.tokens).transpose(1, 2) + self.pos  # [N, T, D]
        x = self.ln(self.blocks(x))
        return self.head(x.mean(dim=1))


# ----------------------------------------------------------------------------- the zoo
# name: (activation, architecture, builder, epochs, lr, weight decay, target accuracy)
# The position in this table fixes each model's seed; append new models at the end.
ZOO = [
    ("lenet_relu", "relu", "lenet", lambda: LeNet("relu"), 10, 1e-3, 1e-4, 0.88),
    ("lenet_tanh", "tanh", "lenet", lambda: LeNet("tanh"), 10, 1e-3, 1e-4, 0.88),
    ("lenet_sigmoid", "sigmoid", "lenet", lambda: LeNet("sigmoid"), 15, 2e-3, 1e-4, 0.88),
    ("cnn_elu", "elu", "plain_cnn", lambda: PlainCNN("elu"), 8, 1e-3, 1e-4, 0.88),
    ("resnet_swish", "swish", "resnet", lambda: ResNet("swish"), 10, 2e-3, 1e-4, 0.88),
    ("resnet_prelu", "prelu", "resnet", lambda: ResNet("prelu"), 10, 2e-3, 1e-4, 0.88),
    ("mobilenet_hardswish", "hardswish", "mobilenet", lambda: MobileNet("hardswish"),
     10, 2e-3, 1e-4, 0.88),
    ("mobilenet_leakyrelu", "leakyrelu", "mobilenet", lambda: MobileNet("leakyrelu"),
     10, 2e-3, 1e-4, 0.88),
    ("mlp_tanh", "tanh", "mlp", lambda: MLP("tanh"), 15, 1e-3, 1e-4, 0.85),
    ("vit_gelu", "gelu", "vit", lambda: ViT("gelu"), 15, 1e-3, 5e-2, 0.85),
]
# Conv nets train in channels_last memory format (about 2x faster with oneDNN on CPU);
# they are converted back to the default format before evaluation and export.
CHANNELS_LAST = {"lenet", "plain_cnn", "resnet", "mobilenet"}
ARCH_DESC = {
    "lenet": "LeNet-5 style: conv5x5(16)-pool-conv5x5(32)-pool-fc120-fc84-fc10",
    "plain_cnn": "VGG-style: 3x[conv3x3-act-maxpool] (8,32,64 channels), fc128, fc10; "
                 "no BatchNorm",
    "resnet": "residual CNN: conv3x3/2(16)+BN stem, 3 basic blocks (16@14x14, 32@7x7, "
              "64@4x4; conv+BN, 1x1 conv+BN projection shortcuts), global avg pool, fc10",
    "mobilenet": "MobileNet-v1 style: conv3x3/2(16)+BN stem, 5 depthwise-separable blocks "
                 "(dw3x3+BN+act, pw1x1+BN+act; 32@14, 64@7, 64@7, 128@4, 128@4), "
                 "global avg pool, fc10",
    "mlp": "MLP: 784-256-128-10",
    "vit": "Vision Transformer: 7x7 patches (16 tokens), dim 64, 4 pre-norm encoder layers, "
           "4 heads (MatMul/Softmax attention), LayerNorm, GELU MLP x2, mean pool, fc10",
}


def set_seed(seed):
    torch.manual_seed(seed)
    np.random.seed(seed % (2 ** 32))


@torch.no_grad()
def evaluate(model, x, y, batch=250):
    model.eval()
    correct = 0
    for i in range(0, x.shape[0], batch):
        correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    return correct / x.shape[0]


def train_one(index, spec, data, args):
    name, act, arch, build, epochs, lr, wd, target = spec
    if args.epochs:
        epochs = args.epochs
    seed = BASE_SEED + index
    set_seed(seed)
    model = build()
    cl = arch in CHANNELS_LAST
    fmt = torch.channels_last if cl else torch.contiguous_format
    model = model.to(memory_format=fmt)
    params = sum(p.numel() for p in model.parameters())
    xtr, ytr, xte, yte = data
    gen = torch.Generator().manual_seed(seed)
    bs = args.batch_size
    steps_per_epoch = math.ceil(xtr.shape[0] / bs)
    total = epochs * steps_per_epoch
    warmup = min(steps_per_epoch // 2, total // 10)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    # linear warm-up for half an epoch, then cosine decay to zero over the remaining steps
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warmup if s < warmup
        else 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(1, total - warmup))))
    print(f"[{name}] {arch}/{act}: {params} params, {epochs} epochs, lr {lr}, wd {wd}, "
          f"seed {seed}", flush=True)
    t0 = time.time()
    for ep in range(1, epochs + 1):
        model.train()
        te = time.time()
        perm = torch.randperm(xtr.shape[0], generator=gen)
        loss_sum, correct = 0.0, 0
        for i in range(0, xtr.shape[0], bs):
            idx = perm[i:i + bs]
            xb, yb = xtr[idx].contiguous(memory_format=fmt), ytr[idx]
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * xb.shape[0]
            correct += (out.argmax(1) == yb).sum().item()
        acc = evaluate(model, xte, yte)
        print(f"[{name}] epoch {ep:2d}/{epochs}  loss {loss_sum / xtr.shape[0]:.4f}  "
              f"train {correct / xtr.shape[0]:.4f}  test {acc:.4f}  "
              f"{time.time() - te:6.1f}s (total {time.time() - t0:6.1f}s)", flush=True)
    # the accuracy reported is that of the exact module that is exported: default memory
    # format, eval mode (BatchNorm running statistics), raw [0, 255] input
    model = model.to(memory_format=torch.contiguous_format).eval()
    acc = evaluate(model, xte, yte)
    train_s = time.time() - t0
    return model, params, acc, epochs, train_s, seed


def export(model, path, fold_bn):
    """Export with opset 17 (fall back to 13) and check the file.
    Returns (opset, note or None, sorted distinct op types)."""
    model.eval()
    dummy = torch.rand(2, 1, 28, 28) * 255.0
    mode = torch.onnx.TrainingMode.EVAL if fold_bn else torch.onnx.TrainingMode.PRESERVE
    note = None
    # PRESERVE + constant folding warns about models *in training mode*; ours is in eval
    # mode (BatchNormalization gets training_mode=0, running statistics as inputs).
    warnings.filterwarnings("ignore", message="It is recommended that constant folding")
    for opset in (17, 13):
        try:
            torch.onnx.export(model, dummy, path, opset_version=opset, do_constant_folding=True,
                              training=mode, input_names=["input"], output_names=["logits"],
                              dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
            break
        except Exception as e:  # noqa: BLE001 -- report and fall back
            note = f"opset 17 export failed ({type(e).__name__}: {e}); used opset 13"
            print(f"  {note}", flush=True)
            if opset == 13:
                raise
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    return opset, note, sorted({n.op_type for n in m.graph.node})


def check_io(path):
    """The exported graph declares input [N,1,28,28] and output [N,10] with the agreed names."""
    m = onnx.load(path)
    ins = [(i.name, [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim])
           for i in m.graph.input]
    outs = [(o.name, [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim])
            for o in m.graph.output]
    assert ins == [("input", ["N", 1, 28, 28])], ins
    assert outs == [("logits", ["N", 10])], outs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", help="comma-separated model names (default: all)")
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)),
                    help="output folder for *.onnx and zoo.json (default: models/)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: on a shared 2-core machine a second "
                         "OpenMP thread made training slower, not faster)")
    ap.add_argument("--epochs", type=int, help="override every model's epoch count (testing)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--train-limit", type=int,
                    help="train on the first K images only (smoke tests; not for the zoo)")
    ap.add_argument("--fold-bn", action="store_true",
                    help="let the exporter fold BatchNorm into Conv (default: keep BN nodes)")
    ap.add_argument("--list", action="store_true", help="list the models and exit")
    args = ap.parse_args()

    if args.list:
        for i, (name, act, arch, _, ep, lr, wd, tgt) in enumerate(ZOO):
            print(f"{i:2d} {name:22s} {act:10s} {arch:10s} epochs {ep:2d} lr {lr} wd {wd} "
                  f"target {tgt}")
        return 0
    names = [n for n, *_ in ZOO]
    chosen = args.only.split(",") if args.only else names
    unknown = [n for n in chosen if n not in names]
    if unknown:
        ap.error(f"unknown model(s) {unknown}; known: {names}")

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    os.makedirs(args.out, exist_ok=True)

    t_load = time.time()
    xtr, ytr = load_split("train")
    xte, yte = load_split("test")
    if args.train_limit:
        xtr, ytr = xtr[:args.train_limit], ytr[:args.train_limit]
    m, s = (xtr / 255).mean().item(), (xtr / 255).std().item()
    print(f"data: train {tuple(xtr.shape)}, test {tuple(xte.shape)}, train mean {m:.4f} "
          f"std {s:.4f} (baked in: {FMNIST_MEAN}, {FMNIST_STD}); {time.time() - t_load:.1f}s",
          flush=True)

    zoo_path = os.path.join(args.out, "zoo.json")

    t_all = time.time()
    failed = []
    for index, spec in enumerate(ZOO):
        name, act, arch = spec[0], spec[1], spec[2]
        if name not in chosen:
            continue
        model, params, acc, epochs, train_s, seed = train_one(
            index, spec, (xtr, ytr, xte, yte), args)
        fname = f"{name}.onnx"
        path = os.path.join(args.out, fname)
        opset, note, ops = export(model, path, args.fold_bn)
        check_io(path)
        with open(path, "rb") as f:
            blob = f.read()
        entry = {
            "name": name, "file": fname, "activation": act, "architecture": arch,
            "architecture_desc": ARCH_DESC[arch], "params": int(params),
            "test_accuracy": round(acc, 4), "accuracy_target": spec[7],
            "opset": opset, "epochs": epochs, "seed": seed,
            "batchnorm": ("folded" if args.fold_bn else "kept") if arch in ("resnet", "mobilenet")
            else "none",
            "onnx_ops": ops, "bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest(),
            "train_seconds": round(train_s, 1), "torch": torch.__version__,
        }
        if note:
            entry["opset_note"] = note
        n_entries = update_zoo(zoo_path, entry)   # after every model: partial runs are kept
        ok = acc >= spec[7]
        if not ok:
            failed.append(name)
        print(f"[{name}] test accuracy {acc:.4f} (target {spec[7]}) {'OK' if ok else 'BELOW'}"
              f"; {fname} {len(blob)} bytes, opset {opset}, ops {ops}; "
              f"{train_s:.0f}s", flush=True)

    print(f"done in {time.time() - t_all:.0f}s; zoo.json has {n_entries} models"
          + (f"; BELOW TARGET: {failed}" if failed else ""), flush=True)
    return 1 if failed else 0


def update_zoo(path, entry):
    """Replace (or add) one model's entry in zoo.json, keeping the others.  Holds an
    exclusive flock on the output folder so that --only runs in parallel do not race."""
    import fcntl
    dfd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        fcntl.flock(dfd, fcntl.LOCK_EX)
        entries = {}
        if os.path.exists(path):
            with open(path) as f:
                entries = {e["name"]: e for e in json.load(f).get("models", [])}
        entries[entry["name"]] = entry
        write_zoo(path, entries)
        return len(entries)
    finally:
        os.close(dfd)


def write_zoo(path, entries):
    order = {n: i for i, (n, *_) in enumerate(ZOO)}
    models = sorted(entries.values(), key=lambda e: (order.get(e["name"], len(order)), e["name"]))
    doc = {
        "dataset": "fashion-mnist",
        "data_files": {s: os.path.join(DATA_DIR, f"{p}-{{images-idx3,labels-idx1}}-ubyte.gz")
                       for s, p in (("train", "train"), ("test", "t10k"))},
        "classes": CLASSES,
        "input": {"name": "input", "dtype": "float32", "shape": ["N", 1, 28, 28],
                  "range": [0, 255], "layout": "NCHW",
                  "description": "raw pixel values 0..255 as float32 (the IDX bytes, unscaled)",
                  "preprocessing": f"none outside the graph; each graph begins with "
                                   f"x/255, -{FMNIST_MEAN}, /{FMNIST_STD} (Div, Sub, Div)"},
        "output": {"name": "logits", "dtype": "float32", "shape": ["N", 10],
                   "description": "unnormalised class scores; argmax is the prediction"},
        "test_accuracy_measured_with": "PyTorch eval mode on all 10,000 test images",
        "models": models,
    }
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
