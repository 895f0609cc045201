#!/usr/bin/env python3
"""Runs the same models in Kiln, PyTorch eager and ONNX Runtime at 1 and 2 threads and prints one
table of median latencies with ratios (Kiln's time divided by the peer's: below 1 means Kiln is
faster).

Models: SimpleCNN at batch 1, 8 and 32 (the golden fixture's `model_dynamic.onnx`, symbolic batch)
and, when `scripts/gen_golden.py --resnet18` has written it, torchvision's ResNet-18 at batch 1.
PyTorch runs the same architecture with the same weights (`weights.safetensors`); ONNX Runtime runs
the `.onnx` file; Kiln runs it through `kiln bench MODEL --json` (the release binary,
`target/release/kiln`, or `$KILN`).

Usage: /work/venv/bin/python scripts/bench_peers.py [--runs-seconds S] [--threads 1,2] [--markdown]
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "compiler" / "tests" / "fixtures" / "golden"
RESNET18 = REPO / "target" / "fixtures" / "resnet18"


class SimpleCNN(nn.Module):
    """The seed tutorial's SimpleCNN (the golden fixture's architecture and state_dict names)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.relu2 = nn.ReLU()

    def forward(self, x):
        x = self.pool(self.relu1(self.conv1(x)))
        return self.pool(self.relu2(self.conv2(x)))


def load_weights(model, path):
    from safetensors.torch import load_file

    state = load_file(str(path))
    missing, unexpected = model.load_state_dict(state, strict=False)
    bad = [k for k in missing if not k.endswith("num_batches_tracked")]
    if bad or unexpected:
        raise SystemExit(f"{path}: missing {bad}, unexpected {unexpected}")
    return model.eval()


def median_ms(fn, seconds, min_runs=10, warmup=5):
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < seconds:
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def bench_torch(model, shape, threads, seconds):
    torch.set_num_threads(threads)
    x = torch.randn(*shape)
    with torch.inference_mode():
        return median_ms(lambda: model(x), seconds)


def bench_ort(onnx_path, shape, threads, seconds):
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    x = np.random.randn(*shape).astype(np.float32)
    return median_ms(lambda: sess.run(None, {name: x}), seconds)


def kiln_binary():
    exe = os.environ.get("KILN") or str(REPO / "target" / "release" / "kiln")
    if not Path(exe).exists():
        subprocess.run(["cargo", "build", "--release", "-p", "kiln-compiler"], cwd=REPO, check=True)
    return exe


def bench_kiln(exe, onnx_path, weights, batch, threads, seconds):
    cmd = [exe, "bench", str(onnx_path), "--batch", str(batch), "--threads", str(threads), "--json"]
    if weights is not None:
        cmd += ["--weights", str(weights)]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if out.returncode != 0:
        print(f"kiln bench failed: {' '.join(cmd)}\n{out.stderr}", file=sys.stderr)
        return None, None
    report = json.loads(out.stdout.strip().splitlines()[-1])
    return report["latency_ms"]["median"], report


def models():
    cnn = GOLDEN / "simple_cnn_batch2"
    simple = load_weights(SimpleCNN(), cnn / "weights.safetensors")
    for batch in (1, 8, 32):
        yield (f"SimpleCNN b{batch}", simple, cnn / "model_dynamic.onnx", None, (batch, 3, 32, 32))
    if (RESNET18 / "model.onnx").exists():
        from torchvision.models import resnet18

        r18 = load_weights(resnet18(weights=None), RESNET18 / "weights.safetensors")
        yield ("ResNet-18 b1", r18, RESNET18 / "model.onnx", None, (1, 3, 224, 224))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs-seconds", type=float, default=1.0)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = ap.parse_args()
    threads_list = [int(t) for t in args.threads.split(",")]
    exe = kiln_binary()
    rows = []
    for name, model, onnx_path, weights, shape in models():
        for threads in threads_list:
            k, report = bench_kiln(exe, onnx_path, weights, shape[0], threads, args.runs_seconds)
            t = bench_torch(model, shape, threads, args.runs_seconds)
            o = bench_ort(onnx_path, shape, threads, args.runs_seconds)
            rows.append((name, threads, k, t, o, report))
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    print(f"machine: {cpu}, {os.cpu_count()} hardware threads; torch {torch.__version__}", end="")
    try:
        import onnxruntime as ort

        print(f", onnxruntime {ort.__version__}")
    except ImportError:
        print(", onnxruntime not installed")

    def fmt(v):
        return "—" if v is None else f"{v:.3f}"

    def ratio(a, b):
        return "—" if a is None or b is None else f"{a / b:.2f}"

    head = ["model", "threads", "Kiln ms", "PyTorch ms", "ORT ms", "Kiln/PyTorch", "Kiln/ORT", "Kiln GFLOP/s", "Kiln % peak"]
    lines = []
    for name, threads, k, t, o, rep in rows:
        gf = f"{rep['gflops']:.1f}" if rep else "—"
        pk = f"{100 * rep['peak_fraction']:.0f}" if rep else "—"
        lines.append([name, str(threads), fmt(k), fmt(t), fmt(o), ratio(k, t), ratio(k, o), gf, pk])
    if args.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for l in lines:
            print("| " + " | ".join(l) + " |")
    else:
        widths = [max(len(r[i]) for r in [head] + lines) for i in range(len(head))]
        for r in [head] + lines:
            print("  ".join(c.rjust(w) for c, w in zip(r, widths)))


if __name__ == "__main__":
    main()
