"""Training precision, torch.compile, and files that move between machines.

The GPU paths run here on the CPU through the same code (device "cpu"): bf16 autocast, fp16 with
its gradient scaler, a compiled network, and checkpoints and bundles written as a GPU run writes
them (tensors tagged with a CUDA device) loading, resuming and classifying on a CPU-only machine.
"""

from __future__ import annotations

import functools
import zipfile
from pathlib import Path

import pytest
import torch

from deepmars.models.bundle import ModelBundle
from deepmars.training.checkpoint import BEST, LATEST, load_checkpoint
from deepmars.training.run import train

pytestmark = pytest.mark.slow

_CPU_TAG = b"X\x03\x00\x00\x00cpu"  # the pickled storage location 'cpu' (BINUNICODE, memoised once)
_CUDA_TAG = b"X\x06\x00\x00\x00cuda:0"


def as_if_saved_on_a_gpu(path: Path) -> None:
    """Rewrite a torch.save file so its tensors claim to live on cuda:0, as a GPU run's would."""
    tmp = path.with_suffix(".cuda-tmp")
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("data.pkl"):
                assert _CPU_TAG in data
                data = data.replace(_CPU_TAG, _CUDA_TAG)
            zout.writestr(item, data)
    tmp.replace(path)


def test_bf16_training_runs_on_the_cpu_and_differs_from_fp32(tmp_path, compose_cfg, mlflow_runs, final_weights):
    train(compose_cfg(tmp_path / "fp32"))
    val_acc = train(compose_cfg(tmp_path / "bf16", "trainer.precision=bf16"))
    (run,) = mlflow_runs(tmp_path / "bf16")
    assert run.info.status == "FINISHED" and run.data.params["trainer.precision"] == "bf16"
    assert 0.0 <= val_acc <= 1.0 and all(v == v for v in run.data.metrics.values())  # no NaN
    a, b = final_weights(tmp_path / "fp32"), final_weights(tmp_path / "bf16")
    assert all(b[k].dtype == a[k].dtype for k in a)  # autocast: the weights stay float32
    assert not all(torch.equal(a[k], b[k]) for k in a)  # ... and the arithmetic was bf16


def test_fp16_trains_with_a_gradient_scaler_saved_in_the_checkpoint(tmp_path, compose_cfg):
    train(compose_cfg(tmp_path, "trainer.precision=16"))
    ckpt = load_checkpoint(tmp_path / "ckpt" / LATEST)
    assert ckpt["config"]["trainer.precision"] == "16"
    assert ckpt["grad_scaler"]["scale"] > 0 and "_growth_tracker" in ckpt["grad_scaler"]
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


def test_a_resume_in_another_precision_is_refused(tmp_path, compose_cfg):
    train(compose_cfg(tmp_path))
    from deepmars.errors import ConfigError

    with pytest.raises(ConfigError, match=r"trainer.precision: '32' -> 'bf16'"):
        train(compose_cfg(tmp_path, "trainer.precision=bf16", f"trainer.resume={tmp_path}/ckpt/{LATEST}"))


def test_files_written_on_a_gpu_load_resume_and_classify_on_a_cpu(tmp_path, compose_cfg, final_weights, mlflow_runs):
    train(compose_cfg(tmp_path, "trainer.max_iters=4"))
    weights = final_weights(tmp_path)
    ckpt_dir = tmp_path / "ckpt"
    for name in (LATEST, BEST, "model.pt"):
        as_if_saved_on_a_gpu(ckpt_dir / name)
    with pytest.raises(RuntimeError, match="CUDA"):  # the rewrite took: a plain load needs a GPU now
        torch.load(ckpt_dir / LATEST, weights_only=True)
    ckpt = load_checkpoint(ckpt_dir / LATEST)
    assert all(v.device.type == "cpu" for v in ckpt["model"].values())
    bundle = ModelBundle.load(ckpt_dir / "model.pt")
    x = torch.zeros(2, 3, 64, 64)
    assert bundle.predict_proba(x).shape == (2, 6)
    # Resuming the GPU run's checkpoint here: nothing left to train, the same run finishes again.
    train(compose_cfg(tmp_path, "trainer.max_iters=4", f"trainer.resume={ckpt_dir / LATEST}"))
    after = final_weights(tmp_path)
    assert all(torch.equal(weights[k], after[k]) for k in weights)
    (run,) = mlflow_runs(tmp_path)
    assert run.info.status == "FINISHED"


def test_compiled_training_writes_the_same_checkpoint_keys(tmp_path, monkeypatch, compose_cfg, final_weights):
    """torch.compile wraps the network for the step only; checkpoints hold the plain names.

    Inductor's code generation takes minutes on this CPU; the eager backend mlflow_runs the same
    compile wrapper (graph capture included) in seconds."""
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    train(compose_cfg(tmp_path / "plain", "trainer.max_iters=3"))
    train(compose_cfg(tmp_path / "compiled", "trainer.max_iters=3", "trainer.compile=true"))
    plain, compiled = final_weights(tmp_path / "plain"), final_weights(tmp_path / "compiled")
    assert compiled.keys() == plain.keys()
    for k in plain:  # the eager backend mlflow_runs the same kernels
        torch.testing.assert_close(compiled[k], plain[k])
