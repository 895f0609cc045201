#!/usr/bin/env python3
"""Generates Kiln's golden test data from PyTorch: compiler/tests/fixtures/golden/<case>/.

Run from anywhere (paths are relative to this file's repository):

    python3 -m venv .venv && .venv/bin/pip install torch torchvision onnx onnxruntime safetensors numpy \
        && .venv/bin/python scripts/gen_golden.py

Options: `--case NAME` (repeatable) regenerates only the named cases; `--resnet18` also writes
torchvision's resnet18 (random weights and BatchNorm statistics, 1x3x224x224, ~45 MB) into
target/fixtures/resnet18/, which is not committed.

Each case is a small `nn.Module` in eval mode, seeded with `torch.manual_seed` from its name, and
gets a directory holding:

- model.kiln          the model in Kiln's text IR (format: compiler/src/ir/text/mod.rs), written by
                      walking the model with one emitter per module type; functional parts of
                      `forward` (the residual add, the flatten) are emitted by the case itself;
- weights.safetensors the whole state_dict (num_batches_tracked included);
- input.npy           the input (float32);
- expected.npy        PyTorch's output under torch.no_grad();
- model.onnx          torch.onnx.export(..., opset_version=17); GELU cases also model_opset20.onnx,
                      simple_cnn_batch2 also model_dynamic.onnx (symbolic batch dimension "N");
                      every ONNX file is run with onnxruntime and checked against expected.npy;
- case.json           {"rtol", "atol", "exact_nan", "note"} for compiler/tests/golden.rs.

The emitter evaluates every op it writes with PyTorch as it goes and the script asserts that the
result equals model(x) bit for bit, so a model.kiln that does not describe the model cannot be
written. The same seed gives the same bytes (ONNX files up to their producer metadata).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file
from torchvision.models.resnet import BasicBlock, ResNet

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "compiler" / "tests" / "fixtures" / "golden"
RESNET18_DIR = REPO / "target" / "fixtures" / "resnet18"

# Tolerances for the small cases (numpy.allclose semantics: |a - b| <= atol + rtol * |b|).
RTOL, ATOL = 1e-4, 1e-5


# --------------------------------------------------------------------------------------------------
# Floats and types as Kiln's text form prints them.


def rust_f32(v: float) -> str:
    """`v` as Rust's `{:?}` prints an f32: the shortest digits that round-trip as f32, positional
    for 1e-4 <= |v| < 1e16 (always with a fractional part: `1.0`), else scientific without `+` or
    exponent padding (`1e-5`, `1.5e16`)."""
    f = np.float32(v)
    if not np.isfinite(f):
        raise ValueError(f"attribute value {v} is not finite")
    if f != 0 and (abs(f) < 1e-4 or abs(f) >= 1e16):
        return np.format_float_scientific(f, unique=True, trim="-", exp_digits=1).replace("+", "")
    return np.format_float_positional(f, unique=True, trim="0")


def _self_test_rust_f32() -> None:
    # What `println!("{:?}", v)` prints for these f32 values (checked with rustc 1.95).
    want = {
        1e-5: "1e-5", 1e-4: "0.0001", 1.234e-5: "1.234e-5", 0.1: "0.1", 0.01: "0.01",
        1.0: "1.0", 100.0: "100.0", 1e15: "1000000000000000.0", 1e16: "1e16", 1.5e16: "1.5e16",
        1e20: "1e20", 0.044715: "0.044715", 123456789.0: "123456790.0", 0.0: "0.0", -0.5: "-0.5",
        2.5e-5: "2.5e-5",
    }
    for v, s in want.items():
        assert rust_f32(v) == s, (v, rust_f32(v), s)


def ty(t: torch.Tensor) -> str:
    return "f32[" + ", ".join(str(d) for d in t.shape) + "]"


def ints(values) -> str:
    return "[" + ", ".join(str(int(v)) for v in values) + "]"


def pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def sides(padding) -> list[int]:
    """PyTorch's symmetric (ph, pw) padding as Kiln's [top, left, bottom, right]."""
    ph, pw = pair(padding)
    return [ph, pw, ph, pw]


# --------------------------------------------------------------------------------------------------
# The .kiln emitter.


class Kiln:
    """Writes a model's text IR while evaluating each op with PyTorch.

    Value names are module paths (`conv1`, `layer1.0.conv1`); a module used twice gets `_1`, `_2`
    appended for its later uses. Parameters are named by their state_dict keys and declared in
    state_dict order."""

    def __init__(self, graph_name: str, model: nn.Module, x: torch.Tensor):
        self.graph_name = graph_name
        self.model = model
        self.x = x
        self.values: dict[str, torch.Tensor] = {"x": x}
        self.ops: list[str] = []
        self.used_params: set[str] = set()
        self.state = model.state_dict()

    # ---- helpers

    def _fresh(self, name: str) -> str:
        if name not in self.values:
            return name
        i = 1
        while f"{name}_{i}" in self.values:
            i += 1
        return f"{name}_{i}"

    def _param(self, key: str) -> str:
        if key not in self.state:
            raise KeyError(f"{key} is not in the state_dict")
        self.used_params.add(key)
        return key

    def op(self, name: str, op: str, operands: list[str], attrs: list[tuple[str, str]],
           value: torch.Tensor) -> str:
        """Appends `%name = op(operands) {attrs} : type` and records the op's value."""
        name = self._fresh(name)
        line = f"%{name} = {op}(" + ", ".join(f"%{o}" for o in operands) + ")"
        if attrs:
            line += " {" + ", ".join(f"{k}={v}" for k, v in attrs) + "}"
        line += f" : {ty(value)}"
        self.ops.append(line)
        self.values[name] = value
        return name

    # ---- functional parts of forward, emitted by the cases

    def add(self, name: str, a: str, b: str) -> str:
        return self.op(name, "add", [a, b], [], self.values[a] + self.values[b])

    def flatten(self, name: str, a: str, start_dim: int = 1) -> str:
        y = torch.flatten(self.values[a], start_dim)
        return self.op(name, "flatten", [a], [("start_dim", str(start_dim))], y)

    def conv2d_padded(self, path: str, conv: nn.Conv2d, a: str, pad_lrtb: tuple) -> str:
        """`conv(F.pad(a, (l, r, t, b)))` as one conv2d with asymmetric padding; `conv` itself must
        have no padding of its own."""
        assert pair(conv.padding) == (0, 0) and conv.padding_mode == "zeros"
        left, right, top, bottom = pad_lrtb
        x = F.pad(self.values[a], (left, right, top, bottom))
        return self._conv(path, conv, a, [top, left, bottom, right], conv(x))

    # ---- modules

    def module(self, path: str, m: nn.Module, a: str) -> str:
        """Emits module `m` (state_dict prefix `path`) applied to value `a`; returns the result's
        name."""
        assert not m.training, f"{path} is in training mode"
        # A clone, so that an in-place module (ReLU(inplace=True)) cannot change a recorded value.
        y = m(self.values[a].clone())
        if isinstance(m, nn.Conv2d):
            assert isinstance(m.padding, tuple) and m.padding_mode == "zeros", path
            return self._conv(path, m, a, sides(m.padding), y)
        if isinstance(m, nn.MaxPool2d):
            k = pair(m.kernel_size)
            s = pair(m.stride if m.stride is not None else m.kernel_size)
            attrs = [("kernel", ints(k)), ("stride", ints(s)), ("padding", ints(sides(m.padding))),
                     ("dilation", ints(pair(m.dilation))),
                     ("ceil_mode", str(bool(m.ceil_mode)).lower())]
            assert not m.return_indices, path
            return self.op(path, "max_pool2d", [a], attrs, y)
        if isinstance(m, nn.AvgPool2d):
            assert m.divisor_override is None, path
            k = pair(m.kernel_size)
            s = pair(m.stride if m.stride is not None else m.kernel_size)
            attrs = [("kernel", ints(k)), ("stride", ints(s)), ("padding", ints(sides(m.padding))),
                     ("ceil_mode", str(bool(m.ceil_mode)).lower()),
                     ("count_include_pad", str(bool(m.count_include_pad)).lower())]
            return self.op(path, "avg_pool2d", [a], attrs, y)
        if isinstance(m, nn.AdaptiveAvgPool2d):
            assert pair(m.output_size) == (1, 1), f"{path}: only AdaptiveAvgPool2d(1) is global"
            return self.op(path, "global_avg_pool2d", [a], [], y)
        if isinstance(m, nn.ReLU):
            return self.op(path, "relu", [a], [], y)
        if isinstance(m, nn.Sigmoid):
            return self.op(path, "sigmoid", [a], [], y)
        if isinstance(m, nn.Tanh):
            return self.op(path, "tanh", [a], [], y)
        if isinstance(m, nn.LeakyReLU):
            return self.op(path, "leaky_relu", [a], [("negative_slope", rust_f32(m.negative_slope))], y)
        if isinstance(m, nn.GELU):
            assert m.approximate in ("none", "tanh"), path
            return self.op(path, "gelu", [a], [("approximate", m.approximate)], y)
        if isinstance(m, nn.ELU):
            return self.op(path, "elu", [a], [("alpha", rust_f32(m.alpha))], y)
        if isinstance(m, nn.BatchNorm2d):
            assert m.affine and m.track_running_stats, path
            operands = [a] + [self._param(f"{path}.{p}")
                              for p in ("weight", "bias", "running_mean", "running_var")]
            return self.op(path, "batch_norm", operands, [("eps", rust_f32(m.eps))], y)
        if isinstance(m, nn.Flatten):
            assert m.end_dim == -1, path
            return self.op(path, "flatten", [a], [("start_dim", str(m.start_dim))], y)
        if isinstance(m, nn.Linear):
            operands = [a, self._param(f"{path}.weight")]
            if m.bias is not None:
                operands.append(self._param(f"{path}.bias"))
            return self.op(path, "linear", operands, [], y)
        if isinstance(m, nn.Sequential):
            for child_name, child in m.named_children():
                a = self.module(f"{path}.{child_name}" if path else child_name, child, a)
            return a
        raise TypeError(f"{path}: no emitter for {type(m).__name__}")

    def _conv(self, path: str, m: nn.Conv2d, a: str, padding: list[int], y: torch.Tensor) -> str:
        operands = [a, self._param(f"{path}.weight")]
        if m.bias is not None:
            operands.append(self._param(f"{path}.bias"))
        attrs = [("stride", ints(pair(m.stride))), ("padding", ints(padding)),
                 ("dilation", ints(pair(m.dilation))), ("groups", str(m.groups))]
        return self.op(path, "conv2d", operands, attrs, y)

    # ---- the whole text

    def text(self, outputs: list[str], comment: str) -> str:
        # Every float tensor of the state_dict must be used, and only those (int64
        # num_batches_tracked is not a parameter of the graph).
        floats = [k for k, v in self.state.items() if v.dtype == torch.float32]
        unused = [k for k in floats if k not in self.used_params]
        assert not unused, f"{self.graph_name}: state_dict entries never used: {unused}"
        lines = [f"; {c}" if c else ";" for c in comment.splitlines()]
        lines.append("; Generated by scripts/gen_golden.py from PyTorch; do not edit by hand.")
        lines.append(f"graph {self.graph_name}(%x: {ty(self.x)}) {{")
        lines += [f"  param %{k}: {ty(self.state[k])}" for k in floats]
        lines += [f"  {line}" for line in self.ops]
        lines.append("  return " + ", ".join(f"%{o}" for o in outputs))
        lines.append("}")
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------
# Models.


class One(nn.Module):
    """A single module under a readable name (state_dict keys `conv.weight`, value `%conv`)."""

    def __init__(self, name: str, m: nn.Module):
        super().__init__()
        self.name = name
        self.add_module(name, m)

    def forward(self, x):
        return getattr(self, self.name)(x)


def walk_one(k: Kiln, m: One) -> list[str]:
    return [k.module(m.name, getattr(m, m.name), "x")]


class PaddedConv(nn.Module):
    """`conv(F.pad(x, (l, r, t, b)))`: asymmetric zero padding in front of a conv."""

    def __init__(self, conv: nn.Conv2d, pad_lrtb: tuple[int, int, int, int]):
        super().__init__()
        self.pad = nn.ZeroPad2d(pad_lrtb)
        self.conv = conv

    def forward(self, x):
        return self.conv(self.pad(x))


def walk_padded_conv(k: Kiln, m: PaddedConv) -> list[str]:
    return [k.conv2d_padded("conv", m.conv, "x", m.pad.padding)]


class FlattenLinear(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(cin, cout)

    def forward(self, x):
        return self.fc(self.flatten(x))


def walk_flatten_linear(k: Kiln, m: FlattenLinear) -> list[str]:
    return [k.module("fc", m.fc, k.module("flatten", m.flatten, "x"))]


class SimpleCNN(nn.Module):
    """The seed tutorial's SimpleCNN (torch_nn_relu_tutorial, example 3); `pool` is used twice."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool = nn.MaxPool2d(2, 2)

    def forward(self, x):
        x = self.pool(self.relu1(self.conv1(x)))
        return self.pool(self.relu2(self.conv2(x)))


def walk_simple_cnn(k: Kiln, m: SimpleCNN) -> list[str]:
    v = k.module("conv1", m.conv1, "x")
    v = k.module("relu1", m.relu1, v)
    v = k.module("pool", m.pool, v)
    v = k.module("conv2", m.conv2, v)
    v = k.module("relu2", m.relu2, v)
    return [k.module("pool", m.pool, v)]  # second use: %pool_1


class SimpleCNNClassifier(SimpleCNN):
    """SimpleCNN + Flatten + Linear(64·8·8 → 10)."""

    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(64 * 8 * 8, 10)

    def forward(self, x):
        return self.fc(self.flatten(super().forward(x)))


def walk_classifier(k: Kiln, m: SimpleCNNClassifier) -> list[str]:
    [v] = walk_simple_cnn(k, m)
    return [k.module("fc", m.fc, k.module("flatten", m.flatten, v))]


class ResidualBlock(nn.Module):
    """conv → relu → conv → add(input) → relu, channels preserved."""

    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        self.relu2 = nn.ReLU()

    def forward(self, x):
        return self.relu2(self.conv2(self.relu1(self.conv1(x))) + x)


def walk_residual(k: Kiln, m: ResidualBlock) -> list[str]:
    v = k.module("conv1", m.conv1, "x")
    v = k.module("relu1", m.relu1, v)
    v = k.module("conv2", m.conv2, v)
    v = k.add("add", v, "x")
    return [k.module("relu2", m.relu2, v)]


class MiniResNet(ResNet):
    """torchvision's ResNet with BasicBlocks at widths 16/32/64/128 (torchvision hard-codes 64/…/512):
    the same module names and forward, so its state_dict and ONNX look like resnet18's."""

    def __init__(self, layers=(1, 1, 1, 1), width=16, num_classes=10):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes = width
        self.dilation = 1
        self.groups = 1
        self.base_width = 64  # BasicBlock insists on its default base width
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(BasicBlock, width, layers[0])
        self.layer2 = self._make_layer(BasicBlock, width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(BasicBlock, width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(BasicBlock, width * 8, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 8 * BasicBlock.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


def randomize_batch_norm(model: nn.Module) -> None:
    """Random BatchNorm weight, bias and running statistics, so that no BN is an identity."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 1.5)


def walk_resnet(k: Kiln, m: ResNet) -> list[str]:
    """torchvision ResNet with BasicBlocks (BasicBlock.forward: conv1 bn1 relu conv2 bn2,
    identity = downsample(x), out += identity, relu; ResNet: torch.flatten(avgpool(x), 1))."""
    v = k.module("conv1", m.conv1, "x")
    v = k.module("bn1", m.bn1, v)
    v = k.module("relu", m.relu, v)
    v = k.module("maxpool", m.maxpool, v)
    for li in range(1, 5):
        for bi, blk in enumerate(getattr(m, f"layer{li}")):
            assert isinstance(blk, BasicBlock)
            p = f"layer{li}.{bi}"
            identity = v
            out = k.module(f"{p}.conv1", blk.conv1, v)
            out = k.module(f"{p}.bn1", blk.bn1, out)
            out = k.module(f"{p}.relu", blk.relu, out)
            out = k.module(f"{p}.conv2", blk.conv2, out)
            out = k.module(f"{p}.bn2", blk.bn2, out)
            if blk.downsample is not None:
                identity = k.module(f"{p}.downsample", blk.downsample, v)
            out = k.add(f"{p}.add", out, identity)
            v = k.module(f"{p}.relu", blk.relu, out)  # second use: %{p}.relu_1
    v = k.module("avgpool", m.avgpool, v)
    v = k.flatten("flatten", v, 1)
    return [k.module("fc", m.fc, v)]


# --------------------------------------------------------------------------------------------------
# Cases.


@dataclass
class Case:
    name: str
    build: Callable[[], tuple[nn.Module, torch.Tensor]]  # called right after seeding
    walk: Callable[[Kiln, nn.Module], list[str]]
    note: str
    rtol: float = RTOL
    atol: float = ATOL
    exact_nan: bool = False
    gelu: bool = False  # also export at opset 20 (native Gelu)
    dynamic: bool = False  # also export with a symbolic batch dimension
    ort_drops_nan: bool = False  # onnxruntime's kernel loses NaN: check it elsewhere only
    check: Callable[[nn.Module, torch.Tensor, torch.Tensor], None] | None = None
    out_dir: Path | None = None


def one(name: str, m: Callable[[], nn.Module], shape: list[int], input_fn=None):
    """A build function for a single-module case: `m()` under the name `name`, on a randn input
    of `shape` (or `input_fn(shape)`)."""

    def build():
        model = One(name, m())
        x = input_fn(shape) if input_fn else torch.randn(shape)
        return model, x

    return build


def span10(shape: list[int]) -> torch.Tensor:
    """Uniform in ±10, with 0, ±10 and ±1e-3 present exactly."""
    x = torch.empty(shape).uniform_(-10.0, 10.0)
    x.view(-1)[:5] = torch.tensor([0.0, -10.0, 10.0, -1e-3, 1e-3])
    return x


def with_nan(shape: list[int]) -> torch.Tensor:
    """randn with NaN at a few places (a corner, an edge, the interior) and ±inf."""
    x = torch.randn(shape)
    flat = x.view(-1)
    flat[0] = float("nan")
    flat[shape[-1] * 3 + 4] = float("nan")
    flat[-2] = float("nan")
    flat[7] = float("inf")
    flat[shape[-1] * 5 + 1] = float("-inf")
    return x


def neg_channel(shape: list[int]) -> torch.Tensor:
    """randn, with channel 1 all negative so that padding must count as −∞ in max-pool."""
    x = torch.randn(shape)
    x[:, 1] = -x[:, 1].abs() - 0.5
    return x


def conv_mk(*args, **kw):
    return lambda: nn.Conv2d(*args, **kw)


def check_ceil_max_pool(model, x, y):
    # Input 5x5, kernel 2, stride 2, padding (0, 1), ceil_mode:
    # rows: ceil((5 + 0 - 2) / 2) + 1 = 3 windows; the last starts at row 4 < 5: KEPT (floor gives 2).
    # cols: ceil((5 + 2 - 2) / 2) + 1 = 4 windows; the last starts at padded col 6 = 5 + 1, i.e. in
    # the right padding: DROPPED, so 3 (the same as floor).
    assert tuple(y.shape[2:]) == (3, 3), y.shape
    floor = F.max_pool2d(x, 2, 2, (0, 1), ceil_mode=False)
    assert tuple(floor.shape[2:]) == (2, 3), floor.shape


def check_ceil_avg_pool(model, x, y):
    # Input 8x8, kernel 3, stride 2, padding 1, ceil_mode: ceil((8 + 2 - 3) / 2) + 1 = 5 windows;
    # the last starts at padded 8 < 8 + 1 (inside the left padding + input): kept. It covers input
    # row 7, one row of right padding and one row beyond the padding.
    assert tuple(y.shape[2:]) == (5, 5), y.shape
    assert tuple(F.avg_pool2d(x, 3, 2, 1).shape[2:]) == (4, 4)


def check_nan(model, x, y):
    assert torch.isnan(y).any(), "NaN did not reach the output"


def check_nan_max_pool(model, x, y):
    # A NaN anywhere in a window makes that output NaN (even next to +inf).
    inf_pos = torch.isinf(x) & (x > 0)
    assert torch.isnan(y).any() and inf_pos.any()
    assert torch.isnan(y[0, 0, 0, 0]), "NaN in the top-left corner window was lost"


def make_cases() -> list[Case]:
    cases = [
        Case("conv2d_basic", one("conv", conv_mk(3, 4, 3, padding=1), [2, 3, 8, 8]), walk_one,
             "nn.Conv2d(3, 4, 3, padding=1), batch 2"),
        Case("conv2d_stride2", one("conv", conv_mk(3, 4, 3, stride=2, padding=1), [1, 3, 9, 9]),
             walk_one, "nn.Conv2d(3, 4, 3, stride=2, padding=1) on 9x9"),
        Case("conv2d_dilation2",
             one("conv", conv_mk(3, 4, 3, padding=2, dilation=2), [1, 3, 10, 10]), walk_one,
             "nn.Conv2d(3, 4, 3, padding=2, dilation=2)"),
        Case("conv2d_groups", one("conv", conv_mk(4, 6, 3, padding=1, groups=2), [1, 4, 7, 7]),
             walk_one, "nn.Conv2d(4, 6, 3, padding=1, groups=2)"),
        Case("conv2d_depthwise",
             one("conv", conv_mk(4, 4, 3, padding=1, groups=4), [1, 4, 7, 7]), walk_one,
             "nn.Conv2d(4, 4, 3, padding=1, groups=4): depthwise"),
        Case("conv2d_nonsquare",
             one("conv", conv_mk(3, 4, (3, 5), padding=(1, 2)), [1, 3, 7, 9]), walk_one,
             "nn.Conv2d(3, 4, (3, 5), padding=(1, 2))"),
        Case("conv2d_no_bias", one("conv", conv_mk(3, 4, 3, padding=1, bias=False), [1, 3, 6, 6]),
             walk_one, "nn.Conv2d(3, 4, 3, padding=1, bias=False)"),
        Case("conv2d_asym_padding",
             lambda: (PaddedConv(nn.Conv2d(3, 4, 3, stride=2), (1, 2, 0, 1)), torch.randn(1, 3, 8, 9)),
             walk_padded_conv,
             "nn.Conv2d(3, 4, 3, stride=2) after nn.ZeroPad2d((l=1, r=2, t=0, b=1)), written in the "
             "IR as one conv2d with padding=[top 0, left 1, bottom 1, right 2]; model.onnx is the "
             "padded module (Pad + Conv)"),
        Case("max_pool2d_k2s2", one("pool", lambda: nn.MaxPool2d(2, 2), [1, 3, 8, 8]), walk_one,
             "nn.MaxPool2d(2, 2)"),
        Case("max_pool2d_k3s2p1",
             one("pool", lambda: nn.MaxPool2d(3, 2, padding=1), [1, 3, 9, 9], neg_channel),
             walk_one,
             "nn.MaxPool2d(3, 2, padding=1); channel 1 is all negative, so padding must act as -inf"),
        Case("max_pool2d_dilation2",
             one("pool", lambda: nn.MaxPool2d(3, 2, padding=1, dilation=2), [1, 2, 11, 11]),
             walk_one, "nn.MaxPool2d(3, 2, padding=1, dilation=2)"),
        Case("max_pool2d_ceil_mode",
             one("pool", lambda: nn.MaxPool2d(2, 2, padding=(0, 1), ceil_mode=True), [1, 2, 5, 5]),
             walk_one,
             "nn.MaxPool2d(2, 2, padding=(0, 1), ceil_mode=True) on 5x5: along rows the extra "
             "ceil window is kept (starts in the input), along columns it is dropped (it would "
             "start in the right padding)",
             check=check_ceil_max_pool),
        Case("max_pool2d_nan",
             one("pool", lambda: nn.MaxPool2d(3, 2, padding=1), [1, 2, 7, 7], with_nan), walk_one,
             "nn.MaxPool2d(3, 2, padding=1) with NaN and +-inf in the input: a window holding a NaN "
             "gives NaN. onnxruntime's MaxPool drops NaN (it is checked only where PyTorch gives a "
             "number)", exact_nan=True, ort_drops_nan=True, check=check_nan_max_pool),
        Case("relu_nan", one("relu", lambda: nn.ReLU(), [1, 2, 7, 7], with_nan), walk_one,
             "nn.ReLU() with NaN and +-inf in the input: relu(NaN) is NaN", exact_nan=True,
             check=check_nan),
        Case("avg_pool2d_pad",
             one("pool", lambda: nn.AvgPool2d(3, 2, padding=1), [1, 3, 9, 9]), walk_one,
             "nn.AvgPool2d(3, 2, padding=1) (count_include_pad=True: padding counts in the divisor)"),
        Case("avg_pool2d_pad_exclude",
             one("pool", lambda: nn.AvgPool2d(3, 2, padding=1, count_include_pad=False),
                 [1, 3, 9, 9]),
             walk_one, "nn.AvgPool2d(3, 2, padding=1, count_include_pad=False)"),
        Case("avg_pool2d_ceil",
             one("pool", lambda: nn.AvgPool2d(3, 2, padding=1, ceil_mode=True), [1, 3, 8, 8]),
             walk_one,
             "nn.AvgPool2d(3, 2, padding=1, ceil_mode=True) on 8x8: the extra last window covers "
             "one input row, one padding row and one row beyond the padding, which PyTorch leaves "
             "out of the divisor", check=check_ceil_avg_pool),
        Case("avg_pool2d_ceil_exclude",
             one("pool", lambda: nn.AvgPool2d(3, 2, padding=1, ceil_mode=True,
                                               count_include_pad=False), [1, 3, 8, 8]),
             walk_one, "nn.AvgPool2d(3, 2, padding=1, ceil_mode=True, count_include_pad=False)",
             check=check_ceil_avg_pool),
        Case("global_avg_pool2d",
             one("avgpool", lambda: nn.AdaptiveAvgPool2d(1), [2, 4, 5, 7]), walk_one,
             "nn.AdaptiveAvgPool2d(1) -> global_avg_pool2d"),
    ]
    acts = [
        ("act_relu", "relu", lambda: nn.ReLU(), "nn.ReLU()"),
        ("act_leaky_relu", "leaky_relu", lambda: nn.LeakyReLU(0.1), "nn.LeakyReLU(0.1)"),
        ("act_sigmoid", "sigmoid", lambda: nn.Sigmoid(), "nn.Sigmoid()"),
        ("act_tanh", "tanh", lambda: nn.Tanh(), "nn.Tanh()"),
        ("act_gelu", "gelu", lambda: nn.GELU(), "nn.GELU() (exact, erf)"),
        ("act_gelu_tanh", "gelu", lambda: nn.GELU(approximate="tanh"), "nn.GELU(approximate='tanh')"),
        ("act_elu", "elu", lambda: nn.ELU(), "nn.ELU() (alpha 1.0)"),
        ("act_elu_alpha05", "elu", lambda: nn.ELU(alpha=0.5), "nn.ELU(alpha=0.5)"),
    ]
    for case_name, value_name, mk, note in acts:
        cases.append(Case(case_name, one(value_name, mk, [2, 3, 8, 8], span10), walk_one,
                          f"{note} on inputs spanning +-10 (0, +-10, +-1e-3 included)",
                          gelu=case_name.startswith("act_gelu")))

    def build_bn():
        bn = nn.BatchNorm2d(6, eps=1e-3)
        randomize_batch_norm(bn)
        return One("bn", bn), torch.randn(2, 6, 5, 5)

    cases += [
        Case("batch_norm", build_bn, walk_one,
             "nn.BatchNorm2d(6, eps=1e-3) in eval mode with random weight, bias and running stats"),
        Case("linear", one("fc", lambda: nn.Linear(20, 7), [3, 20]), walk_one, "nn.Linear(20, 7)"),
        Case("flatten_linear", lambda: (FlattenLinear(4 * 3 * 3, 5), torch.randn(2, 4, 3, 3)),
             walk_flatten_linear, "nn.Flatten() then nn.Linear(36, 5)"),
        Case("simple_cnn_batch2", lambda: (SimpleCNN(), torch.randn(2, 3, 32, 32)), walk_simple_cnn,
             "SimpleCNN from the seed tutorial (pool used twice: %pool, %pool_1) at batch 2; "
             "model_dynamic.onnx has a symbolic batch dimension N", dynamic=True),
        Case("residual_block", lambda: (ResidualBlock(8), torch.randn(1, 8, 16, 16)), walk_residual,
             "conv -> relu -> conv -> add(input) -> relu, 8 channels, 16x16"),
        Case("simple_cnn_classifier", lambda: (SimpleCNNClassifier(), torch.randn(1, 3, 32, 32)),
             walk_classifier, "SimpleCNN + nn.Flatten() + nn.Linear(4096, 10) at batch 1"),
    ]

    def build_mini_resnet():
        model = MiniResNet()
        randomize_batch_norm(model)
        return model, torch.randn(1, 3, 64, 64)

    cases.append(Case("mini_resnet", build_mini_resnet, walk_resnet,
                      "torchvision ResNet(BasicBlock, [1, 1, 1, 1]) at widths 16/32/64/128, 10 "
                      "classes, random BatchNorm statistics, input 1x3x64x64"))
    return cases


def resnet18_case() -> Case:
    from torchvision.models import resnet18

    def build():
        model = resnet18(weights=None)
        randomize_batch_norm(model)
        return model, torch.randn(1, 3, 224, 224)

    return Case("resnet18", build, walk_resnet,
                "torchvision resnet18(weights=None) with random BatchNorm statistics, 1x3x224x224",
                rtol=1e-3, atol=1e-4, out_dir=RESNET18_DIR)


# --------------------------------------------------------------------------------------------------
# Writing and checking.


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bitwise-equal values (NaN equal to NaN)."""
    if a.shape != b.shape or not torch.equal(torch.isnan(a), torch.isnan(b)):
        return False
    numbers = ~torch.isnan(a)
    return bool(torch.equal(a[numbers], b[numbers]))


def export_onnx(model, x, path: Path, opset: int, dynamic: bool = False) -> None:
    kwargs = {}
    if dynamic:
        kwargs["dynamic_axes"] = {"x": {0: "N"}, "y": {0: "N"}}
    with warnings.catch_warnings():
        # The TorchScript exporter (dynamo=False) is deprecated but is what we want: plain ONNX ops
        # with PyTorch-like node names and GELU decomposed at opsets < 20.
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=opset,
                          input_names=["x"], output_names=["y"], **kwargs)


def check_onnx(path: Path, x: torch.Tensor, expected: torch.Tensor, case: Case) -> None:
    """Runs the ONNX file with onnxruntime and asserts it matches PyTorch within the case's
    tolerances (NaN where PyTorch has NaN, except where the case says onnxruntime drops it)."""
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    [got] = sess.run(["y"], {"x": x.numpy()})
    want = expected.numpy()
    if got.shape != want.shape:
        raise AssertionError(f"{path}: onnxruntime gives shape {got.shape}, PyTorch {want.shape}")
    keep = np.ones(want.shape, dtype=bool)
    if case.ort_drops_nan:
        keep = ~np.isnan(want)
    close = np.isclose(got, want, rtol=case.rtol, atol=case.atol, equal_nan=True)
    if not close[keep].all():
        bad = np.argwhere(~close & keep)[0]
        raise AssertionError(f"{path}: onnxruntime disagrees with PyTorch at {tuple(bad)}: "
                             f"{got[tuple(bad)]} vs {want[tuple(bad)]}")


def write_case(case: Case) -> None:
    torch.manual_seed(zlib.crc32(case.name.encode()))
    model, x = case.build()
    model = model.eval()
    x = x.contiguous().float()
    with torch.no_grad():
        expected = model(x.clone())
        if case.check:
            case.check(model, x, expected)
        kiln = Kiln(case.name, model, x)
        outputs = case.walk(kiln, model)
        assert len(outputs) == 1
        if not same(kiln.values[outputs[0]], expected):
            raise AssertionError(f"{case.name}: the emitted ops do not compute model(x)")
    if case.exact_nan != bool(torch.isnan(expected).any()):
        raise AssertionError(f"{case.name}: exact_nan={case.exact_nan} but expected has "
                             f"{'no ' if case.exact_nan else ''}NaN")

    out = case.out_dir or GOLDEN / case.name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / "model.kiln").write_text(kiln.text(outputs, case.note))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              str(out / "weights.safetensors"))
    (out / "weights.safetensors").chmod(0o644)  # safetensors creates it owner-only
    np.save(out / "input.npy", x.numpy().astype(np.float32))
    np.save(out / "expected.npy", expected.numpy().astype(np.float32))

    with torch.no_grad():
        export_onnx(model, x, out / "model.onnx", 17)
        check_onnx(out / "model.onnx", x, expected, case)
        if case.gelu:
            export_onnx(model, x, out / "model_opset20.onnx", 20)
            check_onnx(out / "model_opset20.onnx", x, expected, case)
        if case.dynamic:
            export_onnx(model, x, out / "model_dynamic.onnx", 17, dynamic=True)
            check_onnx(out / "model_dynamic.onnx", x, expected, case)
            # A batch size other than the traced one must run too.
            check_onnx(out / "model_dynamic.onnx", x[:1], model(x[:1]), case)

    meta = {"rtol": case.rtol, "atol": case.atol, "exact_nan": case.exact_nan, "note": case.note}
    (out / "case.json").write_text(json.dumps(meta, indent=2) + "\n")
    size = sum(f.stat().st_size for f in out.iterdir())
    print(f"{case.name:28} {size / 1024:8.1f} KiB  -> {out.relative_to(REPO)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", action="append", default=[], help="only this case (repeatable)")
    ap.add_argument("--resnet18", action="store_true",
                    help="also write resnet18 into target/fixtures/resnet18/ (not committed)")
    args = ap.parse_args()

    _self_test_rust_f32()
    # One thread: PyTorch's CPU kernels then reduce in one fixed order, run after run.
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    cases = make_cases()
    known = {c.name for c in cases}
    unknown = [n for n in args.case if n not in known]
    if unknown:
        print(f"unknown case(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}",
              file=sys.stderr)
        return 2
    for case in cases:
        if not args.case or case.name in args.case:
            write_case(case)
    if args.resnet18:
        write_case(resnet18_case())

    stale = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir() and p.name not in known)
    if stale:
        print(f"warning: directories of no case (delete them?): {', '.join(stale)}", file=sys.stderr)
    total = sum(f.stat().st_size for f in GOLDEN.rglob("*") if f.is_file())
    print(f"fixture tree: {total / 1024 / 1024:.2f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
