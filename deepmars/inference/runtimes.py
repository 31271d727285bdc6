"""Which runtime and precision classify: the names users type, what is installed, what the CPU can do.

- ``torch``: the bundle's own network, eager (the reference every other runtime is checked against);
- ``onnxruntime``: the exported ONNX graph on ONNX Runtime's CPU provider (``pip install "deepmars[onnx]"``);
- ``openvino``: the exported graph as OpenVINO IR (``pip install "deepmars[openvino]"``).

Precision: ``fp32`` is exact (every runtime agrees with eager PyTorch to float rounding: confidences
within 1e-4) and shares the model's catalog rows; ``bf16`` (torch autocast or OpenVINO's bf16
inference precision) and ``int8`` (an NNCF-quantized IR, made by ``export_model.py ... int8=true``)
are faster, opt-in, and write their rows under their own model id, because they can change classes.

``runtime=auto`` takes the fastest installed runtime for the precision: openvino, then
onnxruntime, then torch (measured on a 2-core AVX-512 CPU, tf_efficientnet_lite0 224 px, fp32:
OpenVINO 4.3x and ONNX Runtime 3.0x eager PyTorch's model-only speed).

The exported runtimes run on the CPU only. On a GPU (``device=`` resolved to ``cuda``), ``auto``
takes torch, and ``runtime=onnxruntime`` or ``openvino`` is a usage error naming both keys: a run
the user expects on the GPU must not quietly run on the CPU, nor the other way round.
"""

from __future__ import annotations

import functools
import importlib.util
from enum import StrEnum

from deepmars.errors import ConfigError


class Runtime(StrEnum):
    auto = "auto"
    torch = "torch"
    onnxruntime = "onnxruntime"
    openvino = "openvino"


class Precision(StrEnum):
    fp32 = "fp32"
    bf16 = "bf16"
    int8 = "int8"


RUNTIMES = tuple(r.value for r in Runtime)
PRECISIONS = tuple(p.value for p in Precision)
# Fastest first, per precision: what auto picks among the installed ones.
FASTEST = {"fp32": ("openvino", "onnxruntime", "torch"), "bf16": ("openvino", "torch"), "int8": ("openvino",)}
# The Python modules each runtime needs (exporting needs onnx as well: the graph is ONNX first).
MODULES = {"torch": ("torch",), "onnxruntime": ("onnxruntime", "onnx"), "openvino": ("openvino", "onnx")}
EXTRAS = {"onnxruntime": "onnx", "openvino": "openvino"}
REDUCED = ("bf16", "int8")


def install_hint(runtime: str) -> str:
    return f'pip install "deepmars[{EXTRAS[runtime]}]"' if runtime in EXTRAS else ""


def installed(runtime: str) -> bool:
    return all(importlib.util.find_spec(module) is not None for module in MODULES[runtime])


@functools.cache
def cpu_has_bf16(runtime: str) -> bool:
    """Native bf16 arithmetic (AVX-512 BF16 or AMX) as the runtime itself detects it.

    Without it, bf16 would be emulated: slower than fp32 and still inexact, so it is refused.
    """
    if runtime == "openvino":
        import openvino as ov

        return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    import torch

    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def check_device(runtime: str, device: str) -> None:
    """An exported runtime asked for on a GPU (``device`` other than "cpu"): a usage error saying what to set."""
    if runtime in EXTRAS and device != "cpu":
        raise ConfigError(f"runtime: {runtime} runs on the CPU only, and device= gives {device} here; set "
                          f"device=cpu to classify with {runtime}, or runtime=torch (or runtime=auto) to classify "
                          "on the GPU")


def choose(runtime: str, precision: str, device: str = "cpu") -> str:
    """The runtime that will run ``precision`` on ``device`` (resolved: "cpu", "cuda:0"; ``auto`` resolved
    to torch on a GPU); ConfigError says why not and what to do."""
    if runtime not in RUNTIMES:
        raise ConfigError(f"runtime: got {runtime!r}, allowed: one of {', '.join(RUNTIMES)}")
    if precision not in PRECISIONS:
        raise ConfigError(f"precision: got {precision!r}, allowed: one of {', '.join(PRECISIONS)}")
    if device != "cpu":
        return _choose_on_gpu(runtime, precision, device)
    able = FASTEST[precision]
    if runtime == "auto":
        found = [r for r in able if installed(r)]
        if not found:
            raise ConfigError(f"precision: {precision} runs on {' or '.join(able)}, none of which is installed; "
                              f"install one ({install_hint(able[0])}) or use precision=fp32")
        runtime = found[0]
    elif runtime not in able:
        raise ConfigError(f"precision: {precision} is not available on runtime={runtime}; it runs on "
                          f"{' or '.join(able)}")
    elif not installed(runtime):
        missing = [m for m in MODULES[runtime] if importlib.util.find_spec(m) is None]
        raise ConfigError(f"runtime: {runtime} is not installed (missing Python modules: {', '.join(missing)}); "
                          f"install it with {install_hint(runtime)}, or use runtime=auto or runtime=torch")
    if precision == "bf16" and not cpu_has_bf16(runtime):
        raise ConfigError(f"precision: bf16 needs a CPU with native bf16 (AVX-512 BF16 or AMX), and {runtime} "
                          "finds none on this one (emulated bf16 would be slower than fp32 and still inexact); "
                          "use precision=fp32")
    return runtime


def _choose_on_gpu(runtime: str, precision: str, device: str) -> str:
    check_device(runtime, device)
    if precision == "int8":
        raise ConfigError(f"precision: int8 runs on openvino, on the CPU only, and device= gives {device} here; "
                          "set device=cpu for int8, or precision=fp32 or bf16 to classify on the GPU")
    if precision == "bf16":
        import torch

        if torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
            raise ConfigError(f"precision: bf16 needs a GPU with bfloat16, and {device} has none; use precision=fp32")
    return "torch"
