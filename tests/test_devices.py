"""One device setting for every entry point: what ``auto`` picks, and a clear usage error for a GPU
that is not there (exit code 2, saying what torch found)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from deepmars.devices import check_precision, cuda_report, resolve_device, to_cpu, to_device
from deepmars.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
NO_CUDA = not torch.cuda.is_available()


def test_auto_takes_the_gpu_when_there_is_one_else_the_cpu():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(None).type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")


@pytest.mark.skipif(not NO_CUDA, reason="this machine has a GPU")
@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "cuda:3"])
def test_asking_for_a_gpu_that_is_not_there_says_what_torch_found(spec):
    with pytest.raises(ConfigError) as info:
        resolve_device(spec, "trainer.device")
    msg = str(info.value)
    assert msg.startswith(f"trainer.device={spec}: no CUDA device")
    assert ("built without CUDA" in msg) or ("sees 0 CUDA devices" in msg)
    assert torch.__version__ in msg and "trainer.device=cpu" in msg


@pytest.mark.skipif(NO_CUDA, reason="needs a GPU")
def test_a_gpu_index_beyond_the_count_is_refused():
    with pytest.raises(ConfigError, match="there is no CUDA device 99"):
        resolve_device("cuda:99")


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "mps0", "cuda:-1"])
def test_an_unknown_device_names_the_allowed_forms(spec):
    with pytest.raises(ConfigError, match=r"device: .* is not one of auto, cpu, cuda, cuda:N"):
        resolve_device(spec)


def test_torchrun_local_rank_picks_the_gpu(monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "1")
    if NO_CUDA:
        assert resolve_device("auto").type == "cpu"  # no GPU: every process on the CPU
    elif torch.cuda.device_count() > 1:
        assert resolve_device("cuda") == torch.device("cuda", 1)


def test_cuda_report_names_the_build():
    report = cuda_report()
    assert torch.__version__ in report
    assert ("built with CUDA" in report) == torch.backends.cuda.is_built()


@pytest.mark.parametrize(("value", "expected"), [(32, "32"), ("32", "32"), ("bf16", "bf16"), (16, "16"), ("BF16", "bf16")])
def test_precision_values(value, expected):
    assert check_precision(value, torch.device("cpu")) == expected


@pytest.mark.parametrize("value", [8, "fp32", "half", 64])
def test_an_unknown_precision_is_refused(value):
    with pytest.raises(ConfigError, match=r"trainer.precision: .* is not one of 32, bf16, 16"):
        check_precision(value, torch.device("cpu"))


def test_checkpoint_tensors_come_back_to_the_cpu_nested():
    obj = {"model": {"w": torch.ones(2)}, "optimizer": {"state": {0: {"momentum": torch.zeros(3)}},
                                                       "param_groups": [{"lr": 0.1, "params": [0]}]},
           "rng": (torch.ones(1), "x"), "n": 3}
    out = to_cpu(obj)
    assert out["optimizer"]["param_groups"] == [{"lr": 0.1, "params": [0]}] and out["n"] == 3
    assert isinstance(out["rng"], tuple) and out["rng"][1] == "x"
    assert out["model"]["w"].device.type == "cpu" and torch.equal(out["optimizer"]["state"][0]["momentum"], torch.zeros(3))


def test_to_device_on_the_cpu_is_the_same_tensor():
    t = torch.arange(4)
    assert to_device(t, torch.device("cpu")) is t


@pytest.mark.slow
@pytest.mark.skipif(not NO_CUDA, reason="this machine has a GPU")
@pytest.mark.parametrize(("script", "args"), [
    ("predict.py", ["input=.", "model=none.pt", "device=cuda"]),
    ("landmarks.py", ["classify", "input=.", "model=none.pt", "device=cuda:1"]),
    ("evaluate.py", ["model_uri=none.pt", "dataset=sample_hirise", "split=source_image", "device=cuda",
                     "tracking=none"]),
    ("train.py", ["model=tiny", "trainer.device=cuda", "tracking=none"]),
])
def test_every_entry_point_refuses_a_missing_gpu_with_exit_code_2(tmp_path, script, args):
    done = subprocess.run([sys.executable, str(ROOT / script), *args, f"hydra.run.dir={tmp_path}/hydra"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "no CUDA device" in done.stderr and torch.__version__ in done.stderr
