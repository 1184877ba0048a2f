#!/usr/bin/python3
"""Replay a rangeguard fault list in PyTorch: the baseline injector `rangeguard inject` is timed against.

    /usr/bin/python3 scripts/torch_inject.py MODEL.onnx --faults F.jsonl [--data D]
        [--samples 64] [--batch 64] [--threads 1] [--rangeguard BIN]

MODEL.onnx is a zoo model (models/zoo.json names its architecture and activation). The
model is rebuilt from models/train_zoo.py's own classes and its weights are loaded from
the ONNX file's initializers (see onnx_to_torch_map for the names the exporter changed).
Before any fault, its logits on the evaluation inputs are compared with `rangeguard run`
on the same file: a mismatch over --tolerance is an error, not a warning.

F.jsonl is the fault list `rangeguard inject ... --faults-out F.jsonl` writes (schema:
docs/inject.md). Each weight fault is applied by editing that element of the parameter in
place (bit operations on an int32 view), the evaluation inputs are run, every input is
classified like rangeguard does (DUE: a NaN/Inf score; else SDC: top-1 differs from the
fault-free top-1; else masked), and the element is restored. Weight faults of every kind
(bitflip with any number of bits, stuck-at-0/1, random-value) are supported; activation
faults are not (a clear error).

The baseline is written to be fast and fair: eval mode, torch.inference_mode(), inputs
read once into one tensor per batch (--batch, default 64 like rangeguard inject), the
conv nets in channels_last (--memory-format), the thread count set with
torch.set_num_threads, one OpenBLAS thread, warm-up passes before the clock starts. No
TorchScript freezing or BatchNorm folding: both bake the weights into copies, and an
in-place edit of the parameter would no longer reach the computation. Its
rate counts what rangeguard's timing.campaign_inferences_per_s counts: faults x samples
per second over the fault loop (edit, inference, classification, restore), excluding
setup, the check against rangeguard and the golden run. One JSON line is printed:

    {"tool": "torch", "model", "faults", "samples", "batch", "threads", "pairs", "masked",
     "sdc", "due", "per_layer": {layer: {pairs, sdc, due}}, "per_bit": {...}, "seconds",
     "inferences_per_s", "plain_inferences_per_s", "max_abs_diff_vs_rangeguard",
     "golden_top1_differs", "torch", "openblas_threads"}

per_layer / per_bit use rangeguard's keys (the fault's layer, else its tensor; bits joined
with '+', 'random' for random-value), so the two reports can be compared bucket by bucket.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"


class Fail(Exception):
    """Anything the user can cause: printed as one line, exit status 1."""


# ----------------------------------------------------------------------------- model

def build_zoo_model(model_path, zoo, torch):
    """The zoo's module for MODEL.onnx, built by train_zoo.py's own constructor."""
    with open(os.path.join(ROOT, "models", "zoo.json")) as f:
        entries = {e["file"]: e for e in json.load(f)["models"]}
    fname = os.path.basename(model_path)
    if fname not in entries:
        raise Fail(f"{fname} is not in models/zoo.json (known: {', '.join(sorted(entries))})")
    name = entries[fname]["name"]
    specs = {spec[0]: spec for spec in zoo.ZOO}
    if name not in specs:
        raise Fail(f"zoo.json names '{name}', which models/train_zoo.py does not define")
    _, act, arch, build, *_ = specs[name]
    if (act, arch) != (entries[fname]["activation"], entries[fname]["architecture"]):
        raise Fail(f"{name}: zoo.json says {entries[fname]['architecture']}/"
                   f"{entries[fname]['activation']}, train_zoo.py builds {arch}/{act}")
    return name, build().eval()


def module_path(node_name):
    """The torch module a node was exported from, from its scope name.

    torch.onnx names nodes '/<scope>/.../<Op>', one scope segment per module; a child of a
    Sequential/ModuleList repeats its parent's segment with '.<index>' appended
    ('/layers/layers.0/conv1/conv1.0/Conv' is module layers.0.conv1.0)."""
    parts = []
    for seg in node_name.strip("/").split("/")[:-1]:
        if parts and seg.startswith(parts[-1] + "."):
            parts[-1] = seg          # Sequential child: 'conv1' -> 'conv1.0'
        else:
            parts.append(seg)
    return ".".join(parts)


# Which parameter of its module an initializer is, by the consuming op and input position,
# and how the ONNX tensor is laid out relative to it: "same" (same shape, or the same
# elements in the same order under another shape) or "transpose" (2-D, swapped axes).
PARAM_OF_INPUT = {
    "Conv": {1: ("weight", "same"), 2: ("bias", "same")},
    "Gemm": {1: ("weight", "same"), 2: ("bias", "same")},      # transB=1 checked below
    "MatMul": {1: ("weight", "transpose")},                    # x @ W^T exported as W^T
    "BatchNormalization": {1: ("weight", "same"), 2: ("bias", "same"),
                           3: ("running_mean", "same"), 4: ("running_var", "same")},
    "PRelu": {1: ("weight", "same")},                          # [C,1,1] in ONNX, [C] in torch
    "LayerNormalization": {1: ("weight", "same"), 2: ("bias", "same")},
}


def onnx_to_torch_map(graph, state):
    """{ONNX initializer name: [(torch state_dict key, layout), ...]}.

    Most initializers keep their torch names. The exceptions in the zoo: constants the
    exporter renamed ('onnx::MatMul_274' is blocks.0.attn.q.weight transposed;
    'onnx::PRelu_115' is stem.1.weight reshaped), and initializers it deduplicated behind an
    Identity node (the residual models' shortcut BatchNorm biases read conv2's bias). One
    ONNX tensor can therefore stand for several torch tensors; a fault edits all of them,
    as it edits the one ONNX tensor. Anything unmapped, on either side, is an error."""
    inits = {t.name for t in graph.initializer}
    alias = {n.output[0]: n.input[0] for n in graph.node
             if n.op_type == "Identity" and n.input[0] in inits}
    mapping = {}

    def add(src, key, layout):
        if (key, layout) not in mapping.setdefault(src, []):
            mapping[src].append((key, layout))

    for node in graph.node:
        for pos, name in enumerate(node.input):
            src = alias.get(name, name)
            if src not in inits or node.op_type == "Identity":
                continue
            if name in state:                       # kept its torch name (or an alias's)
                add(src, name, "same")
                continue
            rule = PARAM_OF_INPUT.get(node.op_type, {}).get(pos)
            if rule is None:
                raise Fail(f"cannot map initializer '{name}' (input {pos} of "
                           f"{node.op_type} '{node.name}') to a torch parameter")
            attr = {a.name: a for a in node.attribute}
            if node.op_type == "Gemm" and pos == 1 and attr.get("transB") is None:
                raise Fail(f"Gemm '{node.name}' without transB=1: not a torch Linear export")
            key = f"{module_path(node.name)}.{rule[0]}"
            if key not in state:
                raise Fail(f"initializer '{name}' of '{node.name}' maps to '{key}', "
                           f"which the torch model does not have")
            add(src, key, rule[1])
    covered = {key for pairs in mapping.values() for key, _ in pairs}
    missing = [k for k in state if k not in covered and not k.endswith("num_batches_tracked")]
    if missing:
        raise Fail(f"torch tensors with no ONNX initializer: {', '.join(missing)}")
    return mapping


def torch_view(t, layout):
    """The torch tensor seen in the ONNX tensor's element order (a view: writes go through)."""
    return t.t() if layout == "transpose" else t


def load_weights(model, onnx_model, torch, numpy_helper):
    """Copy every initializer into the module; returns the name mapping."""
    state = model.state_dict(keep_vars=True)
    mapping = onnx_to_torch_map(onnx_model.graph, state)
    arrays = {t.name: numpy_helper.to_array(t) for t in onnx_model.graph.initializer}
    with torch.no_grad():
        for src, pairs in mapping.items():
            a = torch.from_numpy(arrays[src].copy())
            for key, layout in pairs:
                dst = torch_view(state[key], layout)
                if dst.numel() != a.numel():
                    raise Fail(f"'{src}' {tuple(a.shape)} does not fit '{key}' {tuple(dst.shape)}")
                if layout == "transpose" and tuple(dst.shape) != tuple(a.shape):
                    raise Fail(f"'{src}' {tuple(a.shape)} is not '{key}' transposed")
                dst.copy_(a.reshape(dst.shape))
    for p in model.parameters():
        p.requires_grad_(False)
    return mapping, arrays


def memory_format(choice, name, zoo, torch):
    """channels_last for the zoo's conv nets unless told otherwise. Faults are located by
    logical coordinates (prepare_sites), so they land on the same element in either layout."""
    if choice == "auto":
        arch = {spec[0]: spec[2] for spec in zoo.ZOO}[name]
        choice = "channels_last" if arch in zoo.CHANNELS_LAST else "contiguous"
    return torch.channels_last if choice == "channels_last" else torch.contiguous_format


# ----------------------------------------------------------------------------- faults

def read_faults(path):
    """rangeguard's JSON Lines fault list (src/faults/fault.cpp), weight faults only."""
    faults = []
    with open(path) as f:
        for no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                j = json.loads(line)
                fault = {"target": j["target"], "tensor": j["tensor"], "index": int(j["index"]),
                         "layer": j.get("layer", ""), "kind": j["kind"],
                         "bits": [int(b) for b in j.get("bits", [])], "value": j.get("value")}
            except (ValueError, KeyError, TypeError) as e:
                raise Fail(f"{path}:{no}: not a fault: {e}")
            if fault["target"] != "weight":
                raise Fail(f"{path}:{no}: {fault['target']} faults are not supported by this "
                           f"baseline (weight faults only)")
            if fault["kind"] not in ("bitflip", "stuck-at-0", "stuck-at-1", "random-value"):
                raise Fail(f"{path}:{no}: unknown fault kind '{fault['kind']}'")
            if fault["kind"] == "random-value" and fault["value"] is None:
                raise Fail(f"{path}:{no}: random-value fault without a value")
            if fault["kind"] != "random-value" and (
                    not fault["bits"] or any(b < 0 or b > 31 for b in fault["bits"])):
                raise Fail(f"{path}:{no}: bits must be 0-31, at least one")
            faults.append(fault)
    if not faults:
        raise Fail(f"{path}: no faults")
    return faults


def signed32(u):
    """An unsigned 32-bit pattern as the int32 value torch stores."""
    return u - (1 << 32) if u >= 1 << 31 else u


def faulty_bits(orig, fault, np):
    """The int32 pattern `orig` becomes under `fault` (rangeguard's apply_fault)."""
    if fault["kind"] == "random-value":
        return int(np.array([fault["value"]], np.float32).view(np.int32)[0])
    u = orig & 0xFFFFFFFF
    for b in fault["bits"]:
        if fault["kind"] == "bitflip":
            u ^= 1 << b
        elif fault["kind"] == "stuck-at-0":
            u &= ~(1 << b)
        else:                                   # stuck-at-1
            u |= 1 << b
    return signed32(u)


def prepare_sites(faults, mapping, state, arrays, torch, np):
    """Per fault: the int32 views and element coordinates to edit, resolved once (setup)."""
    sites = []
    for k, f in enumerate(faults):
        if f["tensor"] not in mapping:
            raise Fail(f"fault {k + 1}: no initializer '{f['tensor']}' in the model")
        shape = arrays[f["tensor"]].shape
        if f["index"] >= arrays[f["tensor"]].size:
            raise Fail(f"fault {k + 1}: element {f['index']} is past the "
                       f"{arrays[f['tensor']].size} elements of '{f['tensor']}'")
        coord = np.unravel_index(f["index"], shape)          # in the ONNX tensor
        edits = []
        for key, layout in mapping[f["tensor"]]:
            view = torch_view(state[key].data, layout)
            if layout == "same":
                view = view.reshape(shape)              # PRelu: [C] seen as [C, 1, 1]
            ints = view.view(torch.int32)               # same storage, the bits as int32
            if ints.data_ptr() != state[key].data.data_ptr():
                raise Fail(f"internal: '{key}' cannot be edited through a view")
            edits.append((ints, tuple(int(c) for c in coord)))
        sites.append(edits)
    return sites


# ----------------------------------------------------------------------------- data

def read_inputs(path, samples, zoo, np):
    """The first `samples` inputs as float32 [S, 1, 28, 28] (what rangeguard inject reads)."""
    if path.endswith(".npy"):
        x = np.load(path)
    elif path.endswith(".gz"):
        x = zoo.read_idx(path)
    else:
        raise Fail(f"--data must be .npy or a gzip'd IDX file (.gz): {path}")
    x = x[:samples].astype(np.float32)
    if x.ndim == 3:
        x = x[:, None]
    if x.shape[1:] != (1, 28, 28):
        raise Fail(f"{path}: samples of shape {x.shape[1:]}, the zoo takes (1, 28, 28)")
    return np.ascontiguousarray(x)


def rangeguard_logits(binary, model_path, x, threads, np):
    """`rangeguard run` on the same inputs: the outputs the PyTorch model must reproduce."""
    with tempfile.TemporaryDirectory() as d:
        np.save(os.path.join(d, "x.npy"), x)
        p = subprocess.run([binary, "run", model_path, "--input", f"input={d}/x.npy",
                            "--output-dir", d, "--threads", str(threads)],
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise Fail(f"{binary} run failed: {p.stderr.strip()}")
        return np.load(os.path.join(d, "logits.npy"))


# ----------------------------------------------------------------------------- campaign

def classify(out, golden, torch):
    """(sdc, due) counts of one batch: DUE = any non-finite score, else SDC = top-1 moved.
    argmax returns the first maximum, like rangeguard's top1."""
    finite = torch.isfinite(out).all(dim=1)
    due = int((~finite).sum())
    sdc = int((finite & (out.argmax(dim=1) != golden)).sum())
    return sdc, due


def run_campaign(model, batches, goldens, faults, sites, np, torch):
    """The timed part: per fault, edit, run every batch, classify, restore."""
    per_layer, per_bit = {}, {}
    sdc_total = due_total = 0
    n = sum(x.shape[0] for x in batches)
    t0 = time.perf_counter()
    for f, edits in zip(faults, sites):
        saved = []
        for ints, coord in edits:
            orig = int(ints[coord])
            saved.append(orig)
            ints[coord] = faulty_bits(orig, f, np)
        sdc = due = 0
        for x, g in zip(batches, goldens):
            s, d = classify(model(x), g, torch)
            sdc, due = sdc + s, due + d
        for (ints, coord), orig in zip(edits, saved):
            ints[coord] = orig
        for table, key in ((per_layer, f["layer"] or f["tensor"]),
                           (per_bit, "random" if f["kind"] == "random-value"
                            else "+".join(map(str, f["bits"])))):
            e = table.setdefault(key, {"pairs": 0, "sdc": 0, "due": 0})
            e["pairs"] += n
            e["sdc"] += sdc
            e["due"] += due
        sdc_total += sdc
        due_total += due
    seconds = time.perf_counter() - t0
    return sdc_total, due_total, per_layer, per_bit, seconds


def plain_rate(model, batches, torch):
    """Fault-free inferences/s of the same batches (at least 3 passes and 0.3 s, like rangeguard)."""
    runs, t0 = 0, time.perf_counter()
    while runs < 3 or time.perf_counter() - t0 < 0.3:
        for x in batches:
            model(x)
        runs += 1
    return runs * sum(x.shape[0] for x in batches) / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="example: /usr/bin/python3 scripts/torch_inject.py "
                                        "models/lenet_relu.onnx --faults f.jsonl --samples 64")
    ap.add_argument("model", help="zoo ONNX file (models/*.onnx)")
    ap.add_argument("--faults", required=True, help="fault list from rangeguard inject --faults-out")
    ap.add_argument("--data", default=DEFAULT_DATA, help="evaluation inputs: .npy or IDX .gz "
                    "(default: the Fashion-MNIST test images)")
    ap.add_argument("--samples", type=int, default=64, help="evaluation inputs per fault (default 64)")
    ap.add_argument("--batch", type=int, default=64, help="inputs per inference (default 64, "
                    "rangeguard inject's default)")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    ap.add_argument("--rangeguard", default=os.environ.get("BIN", os.path.join(ROOT, "build", "rangeguard")),
                    help="binary whose `run` output the model must reproduce (default $BIN, "
                         "else build/rangeguard)")
    ap.add_argument("--memory-format", choices=("auto", "contiguous", "channels_last"), default="auto",
                    help="layout of the conv nets' weights and inputs (default auto: channels_last "
                         "for the architectures train_zoo.py trains that way, which oneDNN runs "
                         "faster on CPU: measured 2.2x for lenet_relu, 1.2x for mobilenet, 1 thread)")
    ap.add_argument("--tolerance", type=float, default=1e-4,
                    help="largest |torch - rangeguard| logit difference allowed (default 1e-4)")
    args = ap.parse_args()
    if args.samples < 1 or args.batch < 1 or args.threads < 1:
        ap.error("--samples, --batch and --threads must be at least 1")

    # Debian's torch does Linear layers in OpenBLAS (pthread build), whose own thread pool
    # ignores torch.set_num_threads; next to torch's OpenMP threads on a small shared
    # machine it oversubscribes the cores (scripts/bench_torch.py measured 10-100x slower
    # 2-thread runs). One BLAS thread, set before torch loads it, unless the caller chose.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import numpy as np
    import onnx
    from onnx import numpy_helper
    import torch
    sys.path.insert(0, os.path.join(ROOT, "models"))
    import train_zoo as zoo

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)

    # --- setup (untimed): model, weights, inputs, fault sites, the check against rangeguard
    name, model = build_zoo_model(args.model, zoo, torch)
    mapping, arrays = load_weights(model, onnx.load(args.model), torch, numpy_helper)
    fmt = memory_format(args.memory_format, name, zoo, torch)
    model = model.to(memory_format=fmt)      # converts the parameters in place of the old ones
    state = model.state_dict(keep_vars=True)
    faults = read_faults(args.faults)
    sites = prepare_sites(faults, mapping, state, arrays, torch, np)
    x = read_inputs(args.data, args.samples, zoo, np)
    xt = torch.from_numpy(x)
    batches = [xt[i:i + args.batch].contiguous(memory_format=fmt)
               for i in range(0, xt.shape[0], args.batch)]

    with torch.inference_mode():
        logits = torch.cat([model(b) for b in batches]).numpy()
        ref = rangeguard_logits(args.rangeguard, args.model, x, args.threads, np)
        if ref.shape != logits.shape:
            raise Fail(f"rangeguard gives logits {ref.shape}, torch {logits.shape}")
        diff = float(np.abs(ref - logits).max())
        if not diff <= args.tolerance:
            raise Fail(f"{name}: the PyTorch model does not reproduce the ONNX model: max "
                       f"|logit difference| {diff:.3g} > {args.tolerance:g} (weights mapped wrong?)")
        golden_top1_differs = int((ref.argmax(1) != logits.argmax(1)).sum())
        goldens = [b.argmax(dim=1) for b in (model(b) for b in batches)]   # golden run
        rate_plain = plain_rate(model, batches, torch)                     # also the warm-up

        # --- the timed campaign
        sdc, due, per_layer, per_bit, seconds = run_campaign(
            model, batches, goldens, faults, sites, np, torch)

    pairs = len(faults) * x.shape[0]
    print(json.dumps({
        "tool": "torch", "model": name, "faults": len(faults), "samples": int(x.shape[0]),
        "batch": args.batch, "threads": args.threads,
        "memory_format": "channels_last" if fmt == torch.channels_last else "contiguous",
        "pairs": pairs, "masked": pairs - sdc - due, "sdc": sdc, "due": due,
        "per_layer": per_layer, "per_bit": per_bit,
        "seconds": round(seconds, 4), "inferences_per_s": round(pairs / seconds, 1),
        "plain_inferences_per_s": round(rate_plain, 1),
        "max_abs_diff_vs_rangeguard": diff, "golden_top1_differs": golden_top1_differs,
        "torch": torch.__version__, "openblas_threads": os.environ["OPENBLAS_NUM_THREADS"],
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
    }), flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Fail as e:
        print(f"torch_inject: error: {e}", file=sys.stderr)
        sys.exit(1)
