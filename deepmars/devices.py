"""Which device a command runs on, and at which numeric precision: one setting for every entry point.

``auto`` takes the first CUDA GPU when torch sees one, else the CPU; ``cpu``, ``cuda`` and
``cuda:N`` are explicit. Asking for a GPU that is not there is a usage error that says what torch
found (built with CUDA or not, how many devices), never a silent fall back to the CPU: a run the
user expects to take an hour on a GPU must not quietly take a day.

Under torchrun each process takes the GPU of its ``LOCAL_RANK`` (``auto`` and ``cuda``).
"""

from __future__ import annotations

import contextlib
import os
import re

import torch

from deepmars.errors import ConfigError

DEVICE_FORMS = ("auto", "cpu", "cuda", "cuda:N")
PRECISIONS = ("32", "bf16", "16")
_CUDA = re.compile(r"^cuda(?::(\d+))?$")


def cuda_report() -> str:
    """What torch knows about CUDA here, in words: for error messages and benchmark headers."""
    if not torch.backends.cuda.is_built():
        return f"torch {torch.__version__} is built without CUDA"
    count = torch.cuda.device_count()
    names = ", ".join(torch.cuda.get_device_name(i) for i in range(count))
    return (f"torch {torch.__version__} is built with CUDA {torch.version.cuda} and sees {count} CUDA "
            f"device{'s' if count != 1 else ''}{': ' + names if count else ''}")


def device_spec(spec: object, key: str = "device") -> str:
    """The setting's form checked (not whether this machine has it): for work run elsewhere."""
    text = str(spec).strip().lower() if spec is not None else "auto"
    if text not in ("auto", "cpu") and _CUDA.match(text) is None:
        raise ConfigError(f"{key}: {spec!r} is not one of {', '.join(DEVICE_FORMS)}")
    return text


def resolve_device(spec: object, key: str = "device") -> torch.device:
    """``auto`` / ``cpu`` / ``cuda`` / ``cuda:N`` -> a torch device that exists here (ConfigError if not)."""
    text = device_spec(spec, key)
    local_rank = os.environ.get("LOCAL_RANK")
    if text == "cpu":
        return torch.device("cpu")
    if text == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        text = "cuda"
    match = _CUDA.match(text)
    count = torch.cuda.device_count() if torch.backends.cuda.is_built() else 0
    if count == 0:
        raise ConfigError(f"{key}={spec}: no CUDA device ({cuda_report()}); use {key}=cpu or {key}=auto")
    if match.group(1) is not None:
        index = int(match.group(1))
    else:
        index = int(local_rank) if local_rank is not None else 0
    if index >= count:
        raise ConfigError(f"{key}={spec}: there is no CUDA device {index} ({cuda_report()})")
    return torch.device("cuda", index)


def check_precision(value: object, device: torch.device, key: str = "trainer.precision") -> str:
    """``32``, ``bf16`` or ``16`` (as given in YAML: int or string) -> the canonical string."""
    text = str(value).strip().lower()
    if text not in PRECISIONS:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(PRECISIONS)}")
    if text == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"{key}=bf16: {torch.cuda.get_device_name(device)} has no bfloat16; use 16 or 32")
    return text


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Mixed precision for the forward pass (and the loss); a no-op at 32."""
    if precision == "32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """fp16 gradients underflow without loss scaling; bf16 has fp32's range and needs none."""
    return torch.amp.GradScaler(device.type, enabled=precision == "16")


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Host -> device without stalling the host: pinned memory and an asynchronous copy on CUDA."""
    if device.type != "cuda":
        return tensor.to(device)
    if not tensor.is_pinned():
        tensor = tensor.pin_memory()
    return tensor.to(device, non_blocking=True)


def model_device(model: torch.nn.Module) -> torch.device:
    """Where a model's weights live (CPU for a model without parameters)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def to_cpu(obj):
    """Every tensor in a nested dict/list moved to the CPU: checkpoints that load on any machine."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return obj
