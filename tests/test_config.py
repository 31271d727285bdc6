"""deepmars.config and conf/: every config the README shows composes and validates; mistakes name the key.

Configs are composed with Hydra's compose API as ``python train.py <overrides>`` would compose them,
inside a Hydra run: ``return_hydra_config=True``, the output folder set, ``HydraConfig`` set (so
``${hydra:runtime.output_dir}`` in ``trainer.checkpoint_dir`` resolves) and the ``hydra`` node removed
before the task sees the config, as Hydra's launcher does.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CONF, REPO
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from deepmars.cli import help_argv
from deepmars.config import validate
from deepmars.data.dataset import load_dataset
from deepmars.data.root import resolve_root
from deepmars.errors import ConfigError
from deepmars.splits import check_splits, make_splits

DATASET_SPLITS = [
    ("sample_hirise", "source_image"), ("sample_hirise", "random"),
    ("hirise", "source_image"), ("hirise", "random"),
    ("sample_msl", "sol"), ("sample_msl", "files"), ("sample_msl", "random"),
    ("msl", "sol"), ("msl", "files"), ("msl", "random"),
]
MODELS = {  # option -> (model.source, model.name), with the overrides the option needs
    "efficientnet_lite0": (("timm", "tf_efficientnet_lite0"), []),
    "alexnet": (("torchvision", "alexnet"), []),
    "tiny": (("timm", "test_efficientnet"), []),
    "timm": (("timm", "resnet18"), ["model.name=resnet18"]),
}
OPTIMS = ["sgd", "adamw"]
SCHEDULES = ["step", "multistep", "cosine", "constant"]


def compose_raw(overrides: list[str], return_hydra_config: bool = False) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=overrides, return_hydra_config=return_hydra_config)


def compose_run(overrides: list[str], output_dir: Path) -> DictConfig:
    """The validated config ``python train.py <overrides>`` hands to training, run in ``output_dir``."""
    cfg = compose_raw(overrides, return_hydra_config=True)
    cfg.hydra.runtime.output_dir = str(output_dir)
    HydraConfig.instance().set_config(cfg)
    try:
        with open_dict(cfg):
            del cfg["hydra"]
        return validate(cfg)
    finally:
        HydraConfig.instance().cfg = None


# --- every group combination: each pair of options of any two groups, in 40 compositions -------------
# The groups are independent files (each sets only its own node; the only cross-group links are
# ${seed} and ${dataset.name}), so covering every pair covers every interaction; the full product
# (320 compositions, ~0.1 s each here) would not fit the suite's time budget.

def pairwise_design() -> list[tuple[tuple[str, str], str, str, str]]:
    models = list(MODELS)
    return [(ds_split, models[j], OPTIMS[(i // 2 + j) % 2], SCHEDULES[(j + i % 4) % 4])
            for i, ds_split in enumerate(DATASET_SPLITS) for j in range(len(models))]


DESIGN = pairwise_design()


def test_design_covers_every_pair_of_group_options():
    factors = [DATASET_SPLITS, list(MODELS), OPTIMS, SCHEDULES]
    for a, b in itertools.combinations(range(4), 2):
        seen = {(row[a], row[b]) for row in DESIGN}
        assert seen == set(itertools.product(factors[a], factors[b])), (a, b)


@pytest.mark.parametrize(("ds_split", "model", "optim", "schedule"), DESIGN,
                         ids=["-".join([*r[0], *r[1:]]) for r in DESIGN])
@pytest.mark.slow
def test_group_combination_composes_and_validates(tmp_path, ds_split, model, optim, schedule):
    dataset, split = ds_split
    (source, name), extra = MODELS[model]
    cfg = compose_run([f"dataset={dataset}", f"split={split}", f"model={model}", f"optim={optim}",
                       f"schedule={schedule}", *extra], tmp_path)
    assert (cfg.dataset.name, cfg.split.name, cfg.model.source, cfg.model.name, cfg.optim.name,
            cfg.schedule.policy) == (dataset, split, source, name, optim, schedule)
    assert cfg.trainer.checkpoint_dir == f"{tmp_path}/checkpoints"
    assert cfg.tracking.experiment == dataset
    assert OmegaConf.select(cfg, "split.seed") == 0
    if dataset.startswith("sample_"):
        assert cfg.dataset.root == str(REPO / "deepmars" / "sample_data" / dataset.removeprefix("sample_"))
        assert cfg.dataset.download is None
    else:
        assert cfg.dataset.root is None and cfg.dataset.download.url.startswith("https://zenodo.org/records/")


@pytest.mark.parametrize(("dataset", "split", "sizes"), [
    ("sample_hirise", "source_image", {"train": 104, "val": 20, "test": 20}),
    ("sample_hirise", "random", {"train": 96, "val": 24, "test": 24}),
    ("sample_msl", "sol", {"train": 72, "val": 40, "test": 44}),
    ("sample_msl", "files", {"train": 72, "val": 40, "test": 44}),
    ("sample_msl", "random", {"train": 108, "val": 24, "test": 24}),
])
def test_sample_dataset_and_split_load_and_split(tmp_path, dataset, split, sizes):
    cfg = compose_run([f"dataset={dataset}", f"split={split}"], tmp_path)
    ds = load_dataset(cfg.dataset, resolve_root(cfg.dataset, download=False))
    splits = make_splits(ds, cfg.split)
    assert {k: len(v) for k, v in splits.items()} == sizes
    check_splits(splits)


@pytest.mark.real_data
@pytest.mark.parametrize(("overrides", "sizes"), [
    (["dataset=msl", "split=sol"], {"train": 3746, "val": 1640, "test": 1305}),
    (["dataset=hirise"], {"train": 2746, "val": 538, "test": 536}),
])
@pytest.mark.slow
def test_full_dataset_from_deepmars_data(real_data, monkeypatch, tmp_path, overrides, sizes):
    monkeypatch.setenv("DEEPMARS_DATA", str(real_data))
    cfg = compose_run(overrides, tmp_path)
    root = resolve_root(cfg.dataset, download=False)
    assert root == (real_data / cfg.dataset.name).resolve()
    splits = make_splits(load_dataset(cfg.dataset, root), cfg.split)
    assert {k: len(v) for k, v in splits.items()} == sizes


# --- the commands the README shows -------------------------------------------------------------------

README_RUNS = [  # (overrides, values the validated config must then hold)
    ([], {"dataset.name": "sample_hirise"}),
    (["dataset=hirise"], {"dataset.name": "hirise", "split.name": "source_image"}),
    (["dataset=msl", "split=sol"], {"dataset.name": "msl", "split.sol_range.train": [3, 181]}),
    (["experiment=paper_mslnet"], {"model.name": "alexnet", "optim.lr_mult.head": 25}),
    (["experiment=paper_mslnet", "model=efficientnet_lite0"],
     {"dataset.name": "msl", "model.name": "tf_efficientnet_lite0", "trainer.max_iters": 3000}),
    (["experiment=paper_hirisenet", "model=efficientnet_lite0", "seed=1"],
     {"dataset.name": "hirise", "model.name": "tf_efficientnet_lite0", "split.seed": 1}),
    (["model=timm", "model.name=convnext_tiny"], {"model.name": "convnext_tiny", "model.pretrained": "imagenet"}),
    (["optim.lr=1e-3", "model=tiny"], {"optim.lr": 0.001, "model.name": "test_efficientnet"}),
    (["tracking=none"], {"tracking.uri": None, "tracking.log_model": False}),
    (["tracking.uri=http://host:5000"], {"tracking.uri": "http://host:5000"}),
    (["trainer.cache=none", "trainer.num_workers=2", "trainer.class_balance=sampler"],
     {"trainer.cache": "none", "trainer.num_workers": 2, "trainer.class_balance": "sampler"}),
    (["trainer.class_balance=loss", "optim.bias_lr_mult=2", "optim.bias_decay=false",
      "trainer.augment.vflip=true", "trainer.augment.rot90=true", "trainer.resume=auto"],
     {"trainer.class_balance": "loss", "optim.bias_lr_mult": 2.0, "optim.bias_decay": False,
      "trainer.augment.vflip": True, "trainer.augment.rot90": True, "trainer.resume": "auto"}),
]


@pytest.mark.parametrize(("overrides", "values"), README_RUNS, ids=[" ".join(o) or "default" for o, _ in README_RUNS])
def test_readme_command_composes(tmp_path, overrides, values):
    cfg = compose_run(overrides, tmp_path)
    got = {key: OmegaConf.select(cfg, key) for key in values}
    assert {k: OmegaConf.to_container(v) if isinstance(v, DictConfig | ListConfig) else v
            for k, v in got.items()} == values


def test_default_is_the_offline_demo(tmp_path):
    cfg = compose_run([], tmp_path)
    assert (cfg.dataset.name, cfg.split.name, cfg.model.name, cfg.model.pretrained) == (
        "sample_hirise", "source_image", "tf_efficientnet_lite0", "efficientnet_lite0_package")
    assert (cfg.trainer.max_iters, cfg.trainer.epochs) == (None, 10)


@pytest.mark.parametrize(("overrides", "length"), [
    (["trainer.max_iters=100"], (100, None)),  # the default trainer's epochs=10 gives way
    (["experiment=paper_mslnet", "model=efficientnet_lite0", "trainer.epochs=3"], (None, 3)),  # the preset's max_iters
    (["trainer.max_iters=100", "trainer.epochs=5"], (100, None)),  # both given: max_iters wins
    (["trainer.max_iters=null", "trainer.epochs=5"], (None, 5)),
])
def test_training_length_given_on_the_command_line_wins(tmp_path, overrides, length):
    cfg = compose_run(overrides, tmp_path)
    assert (cfg.trainer.max_iters, cfg.trainer.epochs) == length


def test_max_iters_wins_over_epochs_when_both_are_set_in_the_config():
    cfg = compose_raw(["trainer.checkpoint_dir=ck"])
    cfg.trainer.max_iters = 100  # as a preset that sets max_iters but leaves the default epochs
    assert (validate(cfg).trainer.max_iters, validate(cfg).trainer.epochs) == (100, None)


def test_any_schema_key_can_be_set_without_plus_on_a_data_set_yaml_that_lacks_it(tmp_path):
    """A user's own data set YAML need not list every key: dataset.root=... works on it as on msl."""
    (tmp_path / "conf" / "dataset").mkdir(parents=True)
    (tmp_path / "conf" / "dataset" / "mine.yaml").write_text(
        "name: mine\nimage_dir: images\nlabels: {all: labels.txt}\nclasses: {file: classes.csv, format: csv}\n")
    cfg = compose_run([f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "dataset=mine", "split=random",
                       "dataset.root=/data/mine", "dataset.drop_empty_classes=false"], tmp_path)
    assert (cfg.dataset.name, cfg.dataset.root, cfg.dataset.drop_empty_classes) == ("mine", "/data/mine", False)


def test_optuna_search_preset_composes(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    cfg = compose_raw(["hparams_search=optuna", "dataset=hirise"], return_hydra_config=True)
    assert cfg.hydra.sweeper.direction == "maximize"
    assert set(cfg.hydra.sweeper.params) == {"optim.lr", "optim.lr_mult.head", "trainer.label_smoothing"}
    for key in cfg.hydra.sweeper.params:  # every searched key exists in the schema
        assert OmegaConf.select(compose_run(["dataset=hirise"], tmp_path), key) is not None, key


# --- experiment presets: whatever conf/experiment/ holds -----------------------------------------------

EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


def _preset_parts(name: str) -> tuple[list[str], list]:
    """(group overrides, own values) of a preset, after those of the presets it builds on."""
    preset = OmegaConf.load(CONF / "experiment" / f"{name}.yaml")
    groups, bodies = [], []
    for entry in preset.get("defaults", []):
        if entry == "_self_":
            continue
        if isinstance(entry, str):  # another preset of the group, e.g. mslnet_inst on msl_lite0
            base_groups, base_bodies = _preset_parts(entry)
            groups += base_groups
            bodies += base_bodies
            continue
        (key, option), = entry.items()
        assert key.startswith("override /"), f"{name}: defaults entry {entry}"
        groups.append(f"{key.removeprefix('override /')}={option}")
    bodies.append(OmegaConf.masked_copy(preset, [k for k in preset if k != "defaults"]))
    return groups, bodies


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_preset_is_its_groups_plus_its_values(tmp_path, name):
    """``experiment=x`` == the groups x names, with x's own values on top; and it validates."""
    groups, bodies = _preset_parts(name)
    base = compose_raw(groups)
    OmegaConf.set_struct(base, False)  # a preset may add a key of its own (per_group)
    expected = OmegaConf.merge(base, *bodies)
    got = compose_raw([f"experiment={name}"])
    assert OmegaConf.to_container(got) == OmegaConf.to_container(expected)
    cfg = compose_run([f"experiment={name}"], tmp_path)
    assert cfg.dataset.name == got.dataset.name


def test_paper_presets_are_present_and_carry_the_paper_recipe(tmp_path):
    assert {"paper_mslnet", "paper_hirisenet", "demo"} <= set(EXPERIMENTS)
    msl = compose_run(["experiment=paper_mslnet"], tmp_path)
    assert (msl.dataset.name, msl.split.name, msl.model.name, msl.optim.lr, msl.optim.lr_mult.head,
            msl.schedule.policy, msl.schedule.stepsize, msl.trainer.max_iters, msl.trainer.batch_size) == (
        "msl", "sol", "alexnet", 1e-4, 25, "step", 500, 3000, 50)
    hirise = compose_run(["experiment=paper_hirisenet"], tmp_path)
    assert (hirise.dataset.name, hirise.split.name, hirise.optim.lr_mult.head, hirise.trainer.max_iters) == (
        "hirise", "source_image", 10, 5300)


# --- mistakes name the key and what is allowed ---------------------------------------------------------

@pytest.mark.parametrize(("overrides", "message"), [
    (["split.name=bogus"], "split.name: got 'bogus', allowed: one of sol, files, source_image, source_image_cv, random, all"),
    (["trainer.cache=disk"], "trainer.cache: got 'disk', allowed: one of memory, none"),
    (["trainer.batch_size=abc"], "trainer.batch_size: got 'abc', allowed: an integer"),
    (["trainer.batch_size=0"], "trainer.batch_size: got 0, allowed: an integer > 0"),
    (["optim.lr=-0.1"], "optim.lr: got -0.1, allowed: a number > 0"),
    (["optim.name=adam"], "optim.name: got 'adam', allowed: one of sgd, adamw"),
    (["schedule.policy=poly"], "schedule.policy: got 'poly', allowed: one of step, multistep, cosine, constant"),
    (["schedule.milestones=[30,10]"], "schedule.milestones: got [30, 10], allowed: an increasing list"),
    (["model.source=keras"], "model.source: got 'keras', allowed: one of timm, torchvision"),
    (["model.img_size=0"], "model.img_size: got 0, allowed: an integer > 0 or null"),
    (["trainer.class_balance=weights"], "trainer.class_balance: got 'weights', allowed: one of none, sampler, loss"),
    (["experiment=msl_lite0_frozen", "trainer.class_balance=sampler"],
     "trainer.class_balance: got 'sampler', allowed: none or loss when trainer.fine_tune is false"),
    (["trainer.progress=quiet"], "trainer.progress: got 'quiet', allowed: one of auto, bar, log"),
    (["dataset.classes.format=tsv"], "dataset.classes.format: got 'tsv', allowed: one of indexed, csv"),
    (["dataset.classes.header=true"], "dataset.classes.format: got 'indexed', allowed: csv when header or columns"),
    (["dataset.classes.columns.id=-1"], "dataset.classes.columns.id: got -1, allowed: a column position"),
    (["split.group_pattern='x)'"], "split.group_pattern: got 'x)', allowed: a regular expression"),
    (["trainer.eval_splits=[train,holdout]"], "trainer.eval_splits[1]: got 'holdout', allowed: one of train, val, test"),
    (["trainer.num_workers=-1"], "trainer.num_workers: got -1, allowed: an integer >= 0"),
    (["trainer.epochs=null"], "trainer.max_iters: got None, allowed: an integer > 0, or null with trainer.epochs set"),
    (["trainer.max_iters=0"], "trainer.max_iters: got 0, allowed: an integer > 0 or null"),
    (["model=timm"], "model.name is required (missing value '???')"),
    (["dataset.labels=???"], "dataset.labels is required (missing value '???')"),
    (["+trainer.bogus=1"], "trainer.bogus: unknown key; allowed keys: augment, batch_size, "),
    (["+trainer.augment.hflip=true"], "trainer.augment.hflip: unknown key; allowed keys: "
                                      "mirror, random_crop, rot90, vflip"),
    (["+learning_rate=0.1"], "learning_rate: unknown key; allowed keys: dataset, "),
    (["dataset.root=${oc.env:DEEPMARS_NO_SUCH_VARIABLE}"], "dataset.root: KeyError raised while resolving interpolation"),
])
@pytest.mark.slow
def test_bad_value_names_key_and_allowed_values(tmp_path, overrides, message):
    with pytest.raises(ConfigError) as info:
        compose_run(overrides, tmp_path)
    assert str(info.value).startswith(message), str(info.value)


def test_without_a_hydra_run_the_output_dir_interpolation_is_named():
    with pytest.raises(ConfigError, match=r"^trainer\.checkpoint_dir: .*HydraConfig was not set"):
        validate(compose_raw([]))
    assert validate(compose_raw(["trainer.checkpoint_dir=ck"])).trainer.checkpoint_dir == "ck"


def test_hydra_refuses_unknown_keys_and_options_naming_them():
    with pytest.raises(ConfigCompositionException, match=r"Could not override 'trainer\.bogus'"):
        compose_raw(["trainer.bogus=1"])
    with pytest.raises(ConfigCompositionException) as info:
        compose_raw(["dataset=msll"])
    assert "Could not find 'dataset/msll'" in str(info.value)
    assert "\thirise\n\tmsl\n\tsample_hirise\n\tsample_msl" in str(info.value)


# --- the entry point ----------------------------------------------------------------------------------

def train_py(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "train.py", *args], cwd=REPO, capture_output=True, text=True, timeout=60)


@pytest.mark.slow
def test_train_help_lists_the_config_groups():
    out = train_py("--help")
    assert out.returncode == 0, out.stderr
    for line in ["dataset: hirise, msl, sample_hirise, sample_msl", "model: alexnet, efficientnet_lite0, efficientnet_lite1, efficientnet_lite2, timm, tiny",
                 "optim: adamw, sgd", "schedule: constant, cosine, multistep, step",
                 "split: all, files, random, sol, source_image, source_image_cv", "tracking: mlflow, none", "trainer: default"]:
        assert f"\n{line}\n" in out.stdout, line
    assert "experiment: " + ", ".join(EXPERIMENTS) in out.stdout


@pytest.mark.slow
@pytest.mark.parametrize(("args", "named"), [
    (["trainer.bogus=1"], "Could not override 'trainer.bogus'"),     # unknown key (Hydra)
    (["dataset=msll"], "Could not find 'dataset/msll'"),             # unknown option
    (["model=resnet"], "Could not find 'model/resnet'"),
    (["trainer.max_iters=[1"], "no viable alternative at input '[1'"),  # bad override syntax
    (["+trainer.bogus=1"], "trainer.bogus: unknown key; allowed keys: augment, "),  # refused by the schema
    (["trainer.cache=disk"], "trainer.cache: got 'disk', allowed: one of memory, none"),
])
def test_train_usage_errors_exit_2_naming_the_mistake(args, named):
    out = train_py(*args, "tracking=none")
    assert out.returncode == 2, out.stderr[-1000:]
    assert named in out.stderr and "Traceback" not in out.stderr


def test_train_cfg_job_prints_the_composed_config():
    out = train_py("--cfg", "job", "dataset=msl", "split=sol", "optim=adamw")
    assert out.returncode == 0, out.stderr
    printed = OmegaConf.create(out.stdout)
    assert (printed.dataset.name, printed.split.name, printed.optim.name) == ("msl", "sol", "adamw")
    assert printed.split.sol_range == {"train": [3, 181], "val": [182, 564], "test": [565, 1060]}
    assert "hydra" not in printed


def test_help_argv_fills_only_missing_required_groups_and_only_for_help():
    examples = {"dataset": "msl", "split": "sol"}
    assert help_argv(["evaluate.py", "model=m.pt"], examples) == ["evaluate.py", "model=m.pt"]
    assert help_argv(["evaluate.py", "--help"], examples) == ["evaluate.py", "--help", "dataset=msl", "split=sol"]
    assert help_argv(["evaluate.py", "-h", "split=random"], examples) == ["evaluate.py", "-h", "split=random",
                                                                          "dataset=msl"]
