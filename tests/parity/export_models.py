#!/usr/bin/python3
"""Export the parity model zoo: seeded, randomly initialised torchvision models as ONNX.

    /usr/bin/python3 tests/parity/export_models.py --out DIR [--only NAME,...] [--force] [--list]

For every model NAME this writes
    DIR/NAME.onnx        the model: input "input" (N,3,H,W) float32, output "output",
                         dynamic batch axis
    DIR/NAME.input.npy   a seeded input, batch 2, float32, ~N(0,1)
    DIR/NAME.torch.npy   PyTorch's output for that input
    DIR/NAME.json        how it was made (opset, input shape, seed, versions, node counts)
and skips a model whose files already exist unless --force is given.

No pretrained weights are used (nothing is downloaded): every model is built with
weights=None after torch.manual_seed(seed), seed fixed per model below. Then, so that the
graphs exercise what a real checkpoint would:
  * every BatchNorm gets non-trivial statistics and affine parameters (seeded), centred on
    the statistics a seeded calibration batch actually produces there (see
    realistic_parameters: purely random ones let the signal die in the deep networks):
    running_mean = mean + std * N(0, 0.1), running_var = var * U(0.5, 2),
    weight ~ U(0.5, 1.5), bias ~ N(0, 0.1);
    every LayerNorm gets weight ~ U(0.5, 1.5), bias ~ N(0, 0.1);
  * parameters that torchvision initialises to (near) zero, which would hide whole parts
    of a graph, get real values: ConvNeXt's layer scale (1e-6 -> U(0.5, 1.5)), the ViT's
    class token (0 -> N(0, 0.5)) and classification head (0 -> default Linear init);
  * the final classifier is scaled (weight and bias by one positive factor, which scales
    the output exactly) so that PyTorch's output on the seeded input has std 1.
The export keeps BatchNormalization nodes in the graph (training=PRESERVE on a model in
eval mode: torch's eval-mode export would fold them into the convolutions itself), so
rangeguard's own BN folding is exercised. Dropout and stochastic depth are identities in
eval mode and do not appear.

Opset 13 by default, so that HardSwish and Swish reach ONNX as HardSigmoid*x and
Sigmoid*x (the patterns rangeguard's passes recognise); 17 where LayerNormalization is
needed (ConvNeXt, the ViT). GELU is exported as its Erf formula.

Requires Debian's interpreter (/usr/bin/python3) with python3-torch, python3-torchvision,
python3-onnx. Exports run with one torch thread by default (--threads); the files are
byte-identical from run to run at the same thread count (another count changes the
BatchNorm calibration and the reference output by float rounding, ~1e-5 relative).
"""

import argparse
import json
import math
import os
import sys
import time
import warnings
import zlib

# --------------------------------------------------------------------------- model list
# name: (constructor, input (C, H, W), opset, classifier submodule scaled to unit output std)
# The constructors are looked up lazily so that --list needs no torch import.
MODELS = {
    "resnet18":           ("resnet18",                       (3, 224, 224), 13, "fc"),
    "resnet50":           ("resnet50",                       (3, 224, 224), 13, "fc"),
    "mobilenet_v2":       ("mobilenet_v2",                   (3, 224, 224), 13, "classifier.1"),
    "mobilenet_v3_small": ("mobilenet_v3_small",             (3, 224, 224), 13, "classifier.3"),  # HardSwish
    "efficientnet_b0":    ("efficientnet_b0",                (3, 224, 224), 13, "classifier.1"),  # Swish (SiLU)
    "squeezenet1_1":      ("squeezenet1_1",                  (3, 224, 224), 13, "classifier.1"),
    "googlenet":          ("googlenet",                      (3, 224, 224), 13, "fc"),
    "densenet121":        ("densenet121",                    (3, 224, 224), 13, "classifier"),
    "shufflenet_v2_x1_0": ("shufflenet_v2_x1_0",             (3, 224, 224), 13, "fc"),            # channel shuffle
    "regnet_y_400mf":     ("regnet_y_400mf",                 (3, 224, 224), 13, "fc"),            # squeeze-excitation
    "convnext_tiny":      ("convnext_tiny",                  (3, 224, 224), 17, "classifier.2"),  # LayerNorm, GELU
    "vit_small":          ("vit_small",                      (3, 64, 64),   17, "heads.head"),    # attention, LayerNorm, GELU
}
BATCH = 2
CALIBRATION_BATCH = 4  # seeded batch that sets the BatchNorm statistics (not the test input)

# The ViT: torchvision.models.VisionTransformer with a small configuration.
VIT_CONFIG = dict(image_size=64, patch_size=8, num_layers=4, num_heads=4,
                  hidden_dim=128, mlp_dim=256, num_classes=1000)


def model_seed(name):
    """A fixed seed per model (independent of the list's order)."""
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


# --------------------------------------------------------------------------- building
def build(name, torch, torchvision):
    ctor = MODELS[name][0]
    if ctor == "vit_small":
        return torchvision.models.VisionTransformer(**VIT_CONFIG)
    kwargs = {"weights": None}
    if ctor == "googlenet":
        kwargs.update(aux_logits=False, init_weights=True)
    return getattr(torchvision.models, ctor)(**kwargs)


def realistic_parameters(model, seed, chw, torch, torchvision):
    """Gives normalisation layers and near-zero initialised parameters real values.

    BatchNorm statistics are set the way training would leave them, plus noise: in one
    forward pass over a seeded calibration batch (not the test input), each BatchNorm, just
    before it runs, measures its input's per-channel mean m and variance v (the earlier
    layers already set) and takes
        running_mean = m + sqrt(v) * N(0, 0.1),   running_var = v * U(0.5, 2),
        weight ~ U(0.5, 1.5),                      bias ~ N(0, 0.1).
    Statistics drawn without looking at the data (mean ~ N(0, 0.1), var ~ U(0.5, 2)) were
    tried first: in the deep, narrow networks (MobileNets, EfficientNet, GoogLeNet,
    ShuffleNet) the signal then shrinks layer after layer until the BatchNorm biases
    dominate, the output hardly depends on the input (relative change 1e-7 when an early
    layer changes) and a wrong early layer would pass a 1e-4 comparison.
    """
    nn = torch.nn
    g = torch.Generator().manual_seed(seed ^ 0x5EED)

    def normal(shape, std):
        return torch.randn(shape, generator=g) * std

    def uniform(shape, lo, hi):
        return torch.rand(shape, generator=g) * (hi - lo) + lo

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.LayerNorm) and m.elementwise_affine:
                m.weight.copy_(uniform(m.weight.shape, 0.5, 1.5))
                m.bias.copy_(normal(m.bias.shape, 0.1))
            # ConvNeXt blocks: layer_scale is 1e-6 at init, which makes every block an
            # identity to within 1e-6 (and hides any error in it).
            if hasattr(m, "layer_scale") and isinstance(m.layer_scale, nn.Parameter):
                m.layer_scale.copy_(uniform(m.layer_scale.shape, 0.5, 1.5))
        if isinstance(model, torchvision.models.VisionTransformer):
            model.class_token.copy_(normal(model.class_token.shape, 0.5))
            head = model.heads.head
            bound = 1.0 / math.sqrt(head.in_features)
            head.weight.copy_(uniform(head.weight.shape, -bound, bound))
            head.bias.copy_(uniform(head.bias.shape, -bound, bound))

    def calibrate(bn, inputs):
        a = inputs[0].double()
        dims = [0] + list(range(2, a.dim()))
        mean = a.mean(dim=dims)
        var = a.var(dim=dims, unbiased=False)
        var = torch.maximum(var, 1e-2 * var.median().clamp(min=1e-12))  # no dead channels
        c = mean.shape
        bn.running_mean.copy_(mean + var.sqrt() * normal(c, 0.1).double())
        bn.running_var.copy_(var * uniform(c, 0.5, 2.0).double())
        if bn.affine:
            bn.weight.copy_(uniform(c, 0.5, 1.5))
            bn.bias.copy_(normal(c, 0.1))

    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if bns:
        hooks = [bn.register_forward_pre_hook(calibrate) for bn in bns]
        calib = torch.randn((CALIBRATION_BATCH,) + tuple(chw), generator=g)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                model(calib)
        finally:
            for h in hooks:
                h.remove()
            model.train(was_training)


def scale_classifier(model, path, x, torch, target_std=1.0):
    """Scales the final classifier so that the model's output on x has std target_std."""
    layer = model.get_submodule(path)
    if not isinstance(layer, (torch.nn.Linear, torch.nn.Conv2d)):
        raise RuntimeError(f"classifier '{path}' is a {type(layer).__name__}, not Linear/Conv2d")
    with torch.no_grad():
        std = float(model(x).std())
        if not math.isfinite(std) or std == 0.0:
            raise RuntimeError(f"output std is {std} before scaling")
        s = target_std / std
        layer.weight.mul_(s)
        if layer.bias is not None:
            layer.bias.mul_(s)
    return s


# --------------------------------------------------------------------------- exporting
def paths(out, name):
    return {k: os.path.join(out, f"{name}.{k}") for k in ("onnx", "input.npy", "torch.npy", "json")}


def export_one(name, out, torch, torchvision, onnx, np, opset_override=None):
    _, chw, opset, classifier = MODELS[name]
    if opset_override:
        opset = opset_override
    seed = model_seed(name)
    t0 = time.perf_counter()

    torch.manual_seed(seed)
    model = build(name, torch, torchvision)
    realistic_parameters(model, seed, chw, torch, torchvision)
    model.eval()
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn((BATCH,) + tuple(chw), generator=gen, dtype=torch.float32)
    scale = scale_classifier(model, classifier, x, torch)
    with torch.no_grad():
        y = model(x)
    if not torch.isfinite(y).all():
        raise RuntimeError("PyTorch output is not finite")

    p = paths(out, name)
    tmp = {k: v + ".tmp" for k, v in p.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings, the PRESERVE + folding advice
        torch.onnx.export(
            model, (x,), tmp["onnx"],
            input_names=["input"], output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
            opset_version=opset, do_constant_folding=True,
            training=torch.onnx.TrainingMode.PRESERVE,  # keep BatchNormalization nodes
        )
    onnx.checker.check_model(tmp["onnx"])
    proto = onnx.load(tmp["onnx"])
    ops = {}
    for n in proto.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1

    with open(tmp["input.npy"], "wb") as f:
        np.save(f, x.numpy())
    with open(tmp["torch.npy"], "wb") as f:
        np.save(f, y.numpy())
    seconds = time.perf_counter() - t0
    meta = {
        "name": name, "seed": seed, "opset": opset,
        "input_shape": [BATCH] + list(chw), "output_shape": list(y.shape),
        "classifier": classifier, "classifier_scale": scale,
        "output_max_abs": float(y.abs().max()),
        "nodes": len(proto.graph.node), "ops": dict(sorted(ops.items())),
        "export_seconds": round(seconds, 2),
        "torch": torch.__version__, "torchvision": torchvision.__version__, "onnx": onnx.__version__,
    }
    with open(tmp["json"], "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    # Rename the metadata last: a model counts as exported only when all four files exist.
    for k in ("onnx", "input.npy", "torch.npy", "json"):
        os.replace(tmp[k], p[k])
    return meta


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="example: /usr/bin/python3 tests/parity/export_models.py "
                                        "--out build/parity-models --only resnet18,vit_small")
    ap.add_argument("--out", help="output folder (created if missing)")
    ap.add_argument("--only", help="comma-separated model names (default: all)")
    ap.add_argument("--force", action="store_true", help="export even if the files exist")
    ap.add_argument("--list", action="store_true", help="list the models and exit")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--opset", type=int, default=None,
                    help="override every model's opset (default: per model, see the list)")
    args = ap.parse_args()

    if args.list:
        print(f"{'model':20} {'input':>14} {'opset':>5}")
        for name, (_, chw, opset, _) in MODELS.items():
            print(f"{name:20} {'x'.join(map(str, (BATCH,) + chw)):>14} {opset:>5}")
        return 0
    if not args.out:
        ap.error("--out is required")
    names = list(MODELS)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in MODELS]
        if unknown:
            ap.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(MODELS)}")

    os.makedirs(args.out, exist_ok=True)
    todo = [n for n in names if args.force or not all(os.path.exists(f) for f in paths(args.out, n).values())]
    for n in names:
        if n not in todo:
            print(f"{n:20} up to date")
    if not todo:
        return 0

    import numpy as np
    import onnx
    import torch
    import torchvision
    torch.set_num_threads(max(1, args.threads))

    failed = []
    for name in todo:
        try:
            m = export_one(name, args.out, torch, torchvision, onnx, np, args.opset)
        except Exception as e:  # report and go on with the others
            msg = " ".join(str(e).split())
            print(f"{name:20} FAILED: {type(e).__name__}: {msg[:500]}", flush=True)
            failed.append(name)
            continue
        size_mb = os.path.getsize(paths(args.out, name)["onnx"]) / 1e6
        bn = m["ops"].get("BatchNormalization", 0)
        print(f"{name:20} exported in {m['export_seconds']:6.1f} s  opset {m['opset']}  "
              f"{size_mb:6.1f} MB  input {'x'.join(map(str, m['input_shape']))}  "
              f"{m['nodes']} nodes ({bn} BatchNormalization)  max|out| {m['output_max_abs']:.3g}",
              flush=True)
    if failed:
        print(f"export failed for: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
