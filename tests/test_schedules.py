"""LR policies: exact values by iteration, warmup, config errors, exact resume via state_dict."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from deepmars.config import ScheduleConfig
from deepmars.errors import ConfigError
from deepmars.schema import load
from deepmars.training.schedules import build_scheduler as build_validated

CONF = Path(__file__).resolve().parents[1] / "conf" / "schedule"


def build_scheduler(optimizer: torch.optim.Optimizer, cfg, max_iters: int):
    """The scheduler for a ``schedule`` config given as a dict or YAML, validated as train.py does."""
    return build_validated(optimizer, load(ScheduleConfig, cfg, prefix="schedule"), max_iters)


def make_optimizer(base_lrs: tuple[float, ...] = (1e-4, 2.5e-3)) -> torch.optim.SGD:
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in base_lrs]
    return torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, base_lrs, strict=True)], momentum=0.9)


def lrs(cfg: dict, max_iters: int, iterations: list[int], base_lr: float = 1.0) -> dict[int, float]:
    """LR of a one-group optimizer at each listed iteration, stepping as the training loop does."""
    opt = make_optimizer((base_lr,))
    sched = build_scheduler(opt, cfg, max_iters)
    seen = {}
    for it in range(max(iterations) + 1):
        if it in iterations:
            seen[it] = opt.param_groups[0]["lr"]
        opt.step()
        sched.step()
    return seen


def test_caffe_step():
    got = lrs({"policy": "step", "stepsize": 500, "gamma": 0.1}, 3000, [0, 499, 500, 999, 1000, 1500], 1e-4)
    assert got == pytest.approx({0: 1e-4, 499: 1e-4, 500: 1e-5, 999: 1e-5, 1000: 1e-6, 1500: 1e-7})


def test_multistep():
    got = lrs({"policy": "multistep", "milestones": [10, 30], "gamma": 0.5}, 50, [0, 9, 10, 29, 30, 49])
    assert got == pytest.approx({0: 1.0, 9: 1.0, 10: 0.5, 29: 0.5, 30: 0.25, 49: 0.25})


def test_cosine_reaches_min_ratio_at_max_iters():
    got = lrs({"policy": "cosine", "min_lr_ratio": 0.1}, 100, [0, 25, 50, 100, 120])
    quarter = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 4))
    assert got == pytest.approx({0: 1.0, 25: quarter, 50: 0.55, 100: 0.1, 120: 0.1})


def test_constant():
    assert lrs({"policy": "constant"}, 10, [0, 5, 9], 0.01) == pytest.approx({0: 0.01, 5: 0.01, 9: 0.01})


def test_linear_warmup_composes_with_step():
    cfg = {"policy": "step", "stepsize": 8, "gamma": 0.1, "warmup_iters": 4, "warmup_start_ratio": 0.2}
    got = lrs(cfg, 20, [0, 1, 2, 4, 7, 8])
    assert got == pytest.approx({0: 0.2, 1: 0.4, 2: 0.6, 4: 1.0, 7: 1.0, 8: 0.1})


def test_all_groups_scaled_by_the_same_factor():
    opt = make_optimizer((1e-4, 2.5e-3))
    sched = build_scheduler(opt, {"policy": "step", "stepsize": 2, "gamma": 0.1}, 10)
    for _ in range(2):
        opt.step()
        sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-5, 2.5e-4])


def test_state_dict_round_trip_resumes_exactly(tmp_path):
    """Save at iteration 4 as a checkpoint does, rebuild from config, load, and replay."""
    cfg = {"policy": "multistep", "milestones": [3, 6], "gamma": 0.1, "warmup_iters": 2, "warmup_start_ratio": 0.5}
    opt = make_optimizer()
    sched = build_scheduler(opt, cfg, 10)
    history = []
    for it in range(8):
        if it == 4:
            torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, tmp_path / "ckpt.pt")
        history.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    resumed_opt = make_optimizer()
    resumed = build_scheduler(resumed_opt, cfg, 10)
    state = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    resumed_opt.load_state_dict(state["optimizer"])
    resumed.load_state_dict(state["scheduler"])
    replay = []
    for _ in range(4, 8):
        replay.append([g["lr"] for g in resumed_opt.param_groups])
        resumed_opt.step()
        resumed.step()
    assert replay == history[4:]
    assert resumed.last_epoch == sched.last_epoch == 8


def test_invalid_policy_names_key_and_allowed_values():
    with pytest.raises(ConfigError, match="schedule.policy: got 'poly', allowed: one of step, multistep, cosine, constant"):
        build_scheduler(make_optimizer(), {"policy": "poly"}, 10)


@pytest.mark.parametrize("cfg, key", [
    ({"policy": "step", "stepsize": 0}, "schedule.stepsize: got 0, allowed: an integer >= 1"),
    ({"policy": "step", "stepsize": 5, "gamma": 0}, "schedule.gamma"),
    ({"policy": "multistep", "milestones": [30, 10]}, "schedule.milestones"),
    ({"policy": "multistep"}, "schedule.milestones: got \\[\\], allowed: .*non-empty for policy multistep"),
    ({"policy": "cosine", "min_lr_ratio": 2}, "schedule.min_lr_ratio"),
    ({"policy": "constant", "warmup_iters": -1}, "schedule.warmup_iters"),
    ({"policy": "step", "step_size": 5}, "schedule.step_size: unknown key; allowed keys: gamma, milestones, "),
])
def test_bad_values_name_the_key(cfg, key):
    with pytest.raises(ConfigError, match=key):
        build_scheduler(make_optimizer(), cfg, 10)


@pytest.mark.parametrize("name", sorted(p.stem for p in CONF.glob("*.yaml")))
def test_schedule_configs_build(name):
    sched = build_scheduler(make_optimizer(), OmegaConf.load(CONF / f"{name}.yaml"), 3000)
    assert sched.get_last_lr() == pytest.approx([1e-4, 2.5e-3])
