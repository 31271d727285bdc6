"""The paper's lesson replayed on MSL: a new delivery, N labels chosen at random or by active
learning, the head retrained, accuracy measured on the rover's future.

The MSL val sols (182-564) play a new delivery; their true labels stand in for a person. Every
step goes through the tool a person would use:

1. the current model (the parent: EfficientNet-Lite0's frozen ImageNet features + a logistic
   regression head on the train sols) is logged to MLflow as a model bundle, and predict.py's
   runner classifies the delivery into a catalog (posteriors of every class);
2. a label queue is made from that catalog (``images=<catalog>``), one per order; a simulated
   user takes images with ``next_item`` (leases, the queue's order) and labels them;
3. at each N the queue is exported as a label file (``format=labels``) and added to the data
   set as a second train label source, loaded and validated like any label file;
4. the head is retrained on train + N; its MLflow run records the parent model, the label
   files and their checksum; active-learning queues are re-ranked with its posteriors (as
   ``label.py images=<catalog of the new model>`` would) before the next batch is chosen;
5. accuracy on the test sols (565-1060), which no choice ever sees.

Only the head is retrained, on cached features: on a 2-core CPU one retraining costs
seconds, where a fine-tune of the network costs about 35 minutes (README), and the frozen-feature
probe is what gave the best MSL test accuracy there.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from mlflow.tracking import MlflowClient

from deepmars.catalog.labels import ORDERS, LabelStore, NewItem
from deepmars.data.dataset import LabeledDataset, Sample, load_dataset
from deepmars.inference.ranking import rank
from deepmars.labeling.classes import classes_of_dataset
from deepmars.labeling.export import export_labels
from deepmars.labeling.order import from_top_k
from deepmars.labeling.sources import list_images, new_items, read_posteriors
from deepmars.models.loading import BUNDLE_ARTIFACT
from deepmars.prediction.options import PredictOptions
from deepmars.prediction.runner import run_predict
from deepmars.retraining.features import FeatureSet, cached_features
from deepmars.retraining.heads import LinearHead, fit_head, head_bundle
from deepmars.tracking import setup

log = logging.getLogger(__name__)

USER = "simulated-labeler"
TAG_PARENT_MODEL = "deepmars.parent_model"  # the model whose posteriors chose the labels and that this one follows
TAG_LABEL_FILES = "deepmars.label_files"
EXPERIMENT = "msl-retraining"


@dataclass(frozen=True)
class SimulationSettings:
    dataset_cfg: Mapping  # conf/dataset/msl.yaml with its root set
    model_cfg: Mapping  # the frozen backbone (conf/model/efficientnet_lite0.yaml)
    work_dir: Path  # queues, catalog, exported label files
    cache_dir: Path  # feature cache
    tracking_uri: str
    sizes: tuple[int, ...] = (100, 250, 500, 1000)
    orders: tuple[str, ...] = tuple(ORDERS)
    random_seeds: tuple[int, ...] = (0, 1, 2)
    probe_c: float = 1.0
    threads: int = 1


@dataclass
class Result:
    order: str
    seed: int
    n_labels: int
    test_acc: float
    run_id: str
    parent_model: str
    labels_file: str
    seconds: float
    classes_added: dict = field(default_factory=dict)  # labeled images per class in this arm so far


@dataclass
class _Data:
    ds: LabeledDataset
    features: FeatureSet
    train: list[Sample]
    delivery: list[Sample]
    test: list[Sample]
    index: dict[int, int]  # data set class id -> head output


def simulate(settings: SimulationSettings) -> list[Result]:
    """Run every order (random over several seeds) through every N; returns one Result per model."""
    data = _load(settings)
    exp_id = setup({"uri": settings.tracking_uri, "experiment": EXPERIMENT})
    client = MlflowClient()
    top = client.create_run(exp_id, run_name="retraining simulation", tags={"deepmars.kind": "simulation"}).info.run_id
    client.log_dict(top, {k: v for k, v in asdict(settings).items() if k not in ("dataset_cfg", "model_cfg")}
                    | {"work_dir": str(settings.work_dir), "cache_dir": str(settings.cache_dir)}, "settings.json")
    parent_head, parent_run, catalog = _parent(settings, data, client, exp_id, top)
    results = [Result("none", 0, 0, parent_head.accuracy(*_xy(data, data.test)), parent_run, "", "", 0.0)]
    for order in settings.orders:
        for seed in (settings.random_seeds if order == "random" else (0,)):
            results.extend(_arm(settings, data, client, exp_id, top, catalog, order, seed, parent_run))
            _write_results(results, settings.work_dir / "results.csv")
    client.set_terminated(top, "FINISHED")
    return results


def _load(settings: SimulationSettings) -> _Data:
    root = Path(settings.dataset_cfg["root"])
    ds = load_dataset(settings.dataset_cfg, root)
    features = cached_features({s.name: s.path for s in ds.samples}, settings.model_cfg, settings.cache_dir,
                               threads=settings.threads)
    by = {o: [s for s in ds.samples if s.origin == o and s.name not in features.failures]
          for o in ("train", "val", "test")}
    return _Data(ds, features, by["train"], by["val"], by["test"], {c: i for i, c in enumerate(ds.class_ids)})


def _xy(data: _Data, samples: Sequence[Sample]) -> tuple[np.ndarray, np.ndarray]:
    return data.features.rows([s.name for s in samples]), np.array([data.index[s.class_id] for s in samples])


def _parent(settings: SimulationSettings, data: _Data, client: MlflowClient, exp_id: str,
            top: str) -> tuple[LinearHead, str, Path]:
    """The current model: fitted, logged as a bundle, and run over the delivery into a catalog."""
    started = time.monotonic()
    head = fit_head(*_xy(data, data.train), len(data.ds.class_ids), settings.probe_c)
    run = client.create_run(exp_id, run_name="parent: frozen Lite0 + logistic head on train sols",
                            tags={"mlflow.parentRunId": top, "deepmars.kind": "parent model",
                                  TAG_LABEL_FILES: json.dumps([str(data.ds.root / "train-calibrated-shuffled.txt")])})
    run_id = run.info.run_id
    bundle = head_bundle(head, settings.model_cfg, data.ds.class_names,
                         {"name": data.ds.name, "version": data.ds.version, "class_ids": list(data.ds.class_ids),
                          "metadata": data.ds.metadata_spec}, model_id=f"runs:/{run_id}")
    path = bundle.save(settings.work_dir / "parent" / "model.pt")
    client.log_artifact(run_id, str(path), os.path.dirname(BUNDLE_ARTIFACT))
    client.log_param(run_id, "probe_c", settings.probe_c)
    client.log_param(run_id, "n_train", len(data.train))
    client.log_metric(run_id, "test_acc", head.accuracy(*_xy(data, data.test)))
    client.log_metric(run_id, "delivery_acc", head.accuracy(*_xy(data, data.delivery)))
    client.set_terminated(run_id, "FINISHED")
    catalog = settings.work_dir / "delivery.sqlite"
    listing = settings.work_dir / "delivery.txt"
    listing.write_text("".join(f"{s.path}\n" for s in data.delivery), encoding="utf-8")
    catalog.unlink(missing_ok=True)
    run_predict(PredictOptions(input=str(listing), model=f"runs:/{run_id}", catalog=catalog,
                               tracking_uri=settings.tracking_uri, batch_size=50, num_workers=0,
                               threads=settings.threads, min_confidence=0.0, top_k=len(data.ds.class_ids)),
                bundle, progress=False)
    log.info("parent model %s: test %.4f; delivery classified into %s (%.0f s)", run_id,
             head.accuracy(*_xy(data, data.test)), catalog, time.monotonic() - started)
    return head, run_id, catalog


def _arm(settings: SimulationSettings, data: _Data, client: MlflowClient, exp_id: str, top: str, catalog: Path,
         order: str, seed: int, parent_run: str) -> list[Result]:
    """One order (and seed): label up to each N, export, retrain, re-rank."""
    classes = classes_of_dataset(settings.dataset_cfg, "msl")
    queue = settings.work_dir / f"queue-{order}-seed{seed}.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{queue}{suffix}").unlink(missing_ok=True)
    truth = {str(s.path): s.class_id for s in data.delivery}
    results = []
    with LabelStore.open(queue, classes, 1) as store:
        store.add_items(new_items(list_images(str(catalog)), seed, read_posteriors(str(catalog), classes)))
        model_run = parent_run
        for n in settings.sizes:
            started = time.monotonic()
            labeled = store.progress().labeled
            while labeled < n and (item := store.next_item(USER, order)) is not None:
                store.label(item.item_id, USER, truth[item.path], source="simulation")
                labeled += 1
            result, head = _retrain(settings, data, client, exp_id, top, store, order, seed, n, model_run)
            if order != "random":
                _rerank(store, head, data, result.run_id)
            result.seconds = time.monotonic() - started
            results.append(result)
            model_run = result.run_id
            log.info("%s seed %d, N=%d: test %.4f (%.0f s)", order, seed, n, result.test_acc, result.seconds)
    return results


def _retrain(settings: SimulationSettings, data: _Data, client: MlflowClient, exp_id: str, top: str,
             store: LabelStore, order: str, seed: int, n: int, parent_run: str) -> tuple[Result, LinearHead]:
    exported = export_labels(store, settings.work_dir / "labels" / f"{order}-seed{seed}-n{n}.txt",
                             image_dir=Path(settings.dataset_cfg["root"]))
    cfg = dict(settings.dataset_cfg)
    train_file = str(cfg["labels"]["train"])
    cfg["labels"] = {"train": [train_file, str(exported.path)], "test": str(cfg["labels"]["test"])}
    ds = load_dataset(cfg, Path(cfg["root"]))  # the export is validated like any label file
    train = [s for s in ds.samples if s.origin == "train" and s.name not in data.features.failures]
    head = fit_head(*_xy(data, train), len(data.ds.class_ids), settings.probe_c)
    acc = head.accuracy(*_xy(data, data.test))
    files = [str(Path(cfg["root"]) / train_file), str(exported.path)]
    run = client.create_run(exp_id, run_name=f"{order} seed {seed} N={n}", tags={
        "mlflow.parentRunId": top, "deepmars.kind": "retrained head", TAG_PARENT_MODEL: f"runs:/{parent_run}",
        TAG_LABEL_FILES: json.dumps(files), "deepmars.order": order})
    run_id = run.info.run_id
    for key, value in {"order": order, "seed": seed, "n_labels": n, "n_train": len(train), "probe_c": settings.probe_c,
                       "parent_model": f"runs:/{parent_run}", "labels_sha256": ds.labels_sha256,
                       "label_queue": str(store.path)}.items():
        client.log_param(run_id, key, value)
    client.log_metric(run_id, "test_acc", acc)
    client.log_artifact(run_id, str(exported.path), "labels")
    head_file = settings.work_dir / "heads" / f"{run_id}.npz"
    head_file.parent.mkdir(parents=True, exist_ok=True)
    np.savez(head_file, weight=head.weight, bias=head.bias, class_ids=np.array(data.ds.class_ids))
    client.log_artifact(run_id, str(head_file), "head")
    client.set_terminated(run_id, "FINISHED")
    added = _class_counts(exported.path, data.ds)
    return Result(order, seed, n, acc, run_id, f"runs:/{parent_run}", str(exported.path), 0.0, added), head


def _rerank(store: LabelStore, head: LinearHead, data: _Data, run_id: str) -> None:
    """The queue's posteriors from the retrained model, as a catalog of its predictions would give."""
    items = [it for it in store.items() if it.n_labels == 0]
    by_path = {str(s.path): s for s in data.delivery}
    probs = head.probabilities(data.features.rows([by_path[it.path].name for it in items]))
    names = data.ds.class_names
    fresh = []
    for it, p in zip(items, probs, strict=True):
        ranked = rank(p, names, len(names))
        s = from_top_k(ranked.top_k, len(names))
        fresh.append(NewItem(it.path, it.name, it.image_root, it.random_key, f"runs:/{run_id}", ranked.predicted_class,
                             ranked.confidence, s.margin, s.entropy, ranked.top_k))
    store.add_items(fresh)


def _class_counts(labels_file: Path, ds: LabeledDataset) -> dict:
    names = dict(zip(ds.class_ids, ds.class_names, strict=True))
    counts: dict[str, int] = {}
    for line in labels_file.read_text(encoding="utf-8").splitlines():
        name = names[int(line.split()[1])]
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def _write_results(results: list[Result], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["order", "seed", "n_labels", "test_acc", "run_id", "parent_model", "labels_file", "seconds",
                         "classes_added"])
        for r in results:
            writer.writerow([r.order, r.seed, r.n_labels, f"{r.test_acc:.4f}", r.run_id, r.parent_model, r.labels_file,
                             f"{r.seconds:.1f}", json.dumps(r.classes_added)])

