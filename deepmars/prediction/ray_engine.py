"""``predict.py engine=ray``: the predict pipeline as a Ray Data job, on one machine or a cluster.

paths -> decode + hash (``map_batches`` CPU tasks running ``decode.process_path``, as predict.py's
workers do) -> classify (``map_batches`` with an actor pool: each actor builds its classifier
once, with ``inference.opening.make_classifier`` as predict.py does, at the run's runtime and
precision, on a GPU where the cluster has them) -> rows written by the driver into the same SQLite
catalog, one transaction per batch, through the same code as a single-process run
(``runner.chunk_rows``).

The driver opens the run's classifier first, as a local run does (``runner.run_predict``): it
chooses the runtime for where the actors run (torch on GPUs, where the exported runtimes do not
run), finds or makes the model's export, and checks it against eager PyTorch on the first few
pending images, decoded here, before any actor starts. The actors get the checked export's files
with the model, so a cluster's workers need no access to where the export is kept.

What stays with the driver: the catalog. It lists the input, skips files this model already
classified (unchanged size and mtime, as predict.py), and writes every batch as it arrives, so a
killed job, run again, gives the catalog of an uninterrupted one. Workers never open the catalog
(on a cluster they need only the images and deepmars): a file whose content this model already
classified under another path is decoded and classified anyway, and the driver then copies the
stored prediction, exactly as predict.py's reuse does.

The paths go to Ray ``ray.window`` at a time, so the driver's memory does not grow with the
archive; each window is one Ray Data execution (its actor pool loads the model once per actor).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from deepmars.catalog import Catalog
from deepmars.catalog.predictions import PredictionStore
from deepmars.devices import resolve_device
from deepmars.errors import ConfigError
from deepmars.inference.classifier import Classifier
from deepmars.inference.opening import CHECK_IMAGES, make_classifier
from deepmars.models.bundle import ModelBundle
from deepmars.models.exported import pack_export, unpack_export
from deepmars.prediction.decode import Chunk, DecodeSettings, Item, Status, process_path
from deepmars.prediction.inputs import count_inputs, iter_inputs
from deepmars.prediction.options import PredictOptions, RayConfig, config_of
from deepmars.prediction.runner import (
    RunSummary,
    chunk_rows,
    chunks,
    pending,
    progress_bar,
    shard_of,
    source_groups,
    write_released,
)

log = logging.getLogger(__name__)

PIP_COMMAND = "pip install 'deepmars[ray]'"
# A decode worker process with deepmars imported (numpy, PIL, torch) holds ~370 MiB (measured with
# Ray 2.60); its batch of decoded arrays comes on top.
DECODE_WORKER_MEMORY = 512 * 2**20


def ray_settings(cfg: Mapping) -> RayConfig:
    """The validated ``ray.*`` keys of predict.py's config."""
    return config_of(cfg).ray


def import_ray():
    """Ray itself, or a usage error that says how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401 - the Data library is a separate extra of ray
    except ImportError:
        raise ConfigError(f"engine=ray needs Ray Data, which is not installed: {PIP_COMMAND}") from None
    return ray


# ----------------------------------------------------------------------- worker side (Ray processes)
def decode_batch(batch: dict[str, np.ndarray], settings: DecodeSettings) -> dict[str, np.ndarray]:
    """Ray task: hash + decode each path (``process_path``, never raises for a bad file)."""
    pre = settings.preprocess
    paths = [os.fsdecode(p) for p in batch["path"]]
    pixels = np.zeros((len(paths), pre.resize, pre.resize, pre.channels), dtype=np.uint8)
    items, decoded = [], np.zeros(len(paths), dtype=bool)
    for i, path in enumerate(paths):
        item, array = process_path(path, settings)
        if array is not None:
            pixels[i], decoded[i] = array, True
        items.append(json.dumps({**asdict(item), "status": item.status.value}))
    return {"item": np.array(items, dtype=object), "decoded": decoded, "pixels": pixels}


@dataclass
class WorkerPlan:
    """What an actor needs to build the driver's classifier: the model, the chosen runtime and precision,
    and the export's files (none for torch)."""

    state: dict
    model_id: str
    sha256: str
    runtime: str
    precision: str
    threads: int | None
    device: str  # device= as given; "auto" is resolved by each actor (its GPU, if Ray gave it one)
    export_manifest: dict | None = None
    export_files: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def of(cls, model: Classifier, threads: int | None, device: str) -> WorkerPlan:
        b, export = model.bundle, model.export
        return cls(b.to_state(), b.model_id, b.sha256, model.runtime, model.precision, threads, device,
                   None if export is None else export.manifest, {} if export is None else pack_export(export))

    def build(self, scratch: Path) -> Classifier:
        bundle = ModelBundle.from_state(self.state, self.model_id, self.sha256)
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        if self.runtime != "torch":  # the exported runtimes run on the CPU
            export = unpack_export(self.export_files, self.export_manifest, scratch)
            return make_classifier(bundle, self.runtime, self.precision, self.threads, export=export)
        device = resolve_device(self.device)
        bundle.model.to(device=device, memory_format=torch.channels_last).eval()
        return make_classifier(bundle, "torch", self.precision, self.threads, device)


class ClassifierActor:
    """Ray actor: the run's classifier, built once from the driver's plan."""

    def __init__(self, plan_ref: list):
        import ray

        scratch = Path(tempfile.mkdtemp(prefix="deepmars-ray-export-"))
        weakref.finalize(self, shutil.rmtree, scratch, True)
        self.model = ray.get(plan_ref[0]).build(scratch)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        decoded = batch["decoded"].astype(bool)
        probs = np.full((len(decoded), len(self.model.class_names)), np.nan, dtype=np.float32)
        if decoded.any():
            probs[decoded] = self.model.probabilities(batch["pixels"][decoded])
        return {"item": batch["item"], "decoded": decoded, "probs": probs}


# ------------------------------------------------------------------------------------- driver side
class RayEngine:
    """Connects to (or starts) Ray for one predict run; ``classify`` plugs into ``run_predict``."""

    def __init__(self, settings: RayConfig, device_spec: str = "auto"):
        self.settings, self.device_spec = settings, device_spec
        self.ray = import_ray()
        self._started = False

    def __enter__(self) -> RayEngine:
        if not self.ray.is_initialized():
            s = self.settings
            if s.address:
                self.ray.init(address=s.address)
            else:
                self.ray.init(num_cpus=s.num_cpus, num_gpus=s.num_gpus, include_dashboard=False)
            self._started = True
        ctx = self.ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # the run has its own progress bar and summary
        # Ray Data's per-execution INFO lines (one set per window) would bury the run's own output.
        self._data_log = logging.getLogger("ray.data")
        self._data_level = self._data_log.level
        self._data_log.setLevel(logging.WARNING)
        return self

    def __exit__(self, *exc) -> None:
        self._data_log.setLevel(self._data_level)
        if self._started:
            self.ray.shutdown()

    def gpus_per_worker(self) -> float:
        """GPUs each actor asks Ray for; auto: 1 where the cluster has GPUs, unless device=cpu."""
        if self.settings.gpus_per_worker != "auto":
            return float(self.settings.gpus_per_worker)
        has_gpus = self.ray.cluster_resources().get("GPU", 0) >= 1
        return 1.0 if has_gpus and self.device_spec != "cpu" else 0.0

    def runs_on(self) -> str:
        """Where the actors classify, for choosing the runtime: "cpu", or the device= of their GPUs."""
        if self.device_spec.startswith("cuda"):
            return self.device_spec
        return "cpu" if self.device_spec == "cpu" or self.gpus_per_worker() == 0 else "cuda (the Ray workers' GPUs)"

    def classify(self, catalog: Catalog, opts: PredictOptions, model: Classifier, summary: RunSummary,
                 progress: bool) -> None:
        """Pending paths, a window at a time, through Ray; each returned batch is one transaction."""
        bundle = model.bundle
        groups = source_groups(bundle)
        summary.total = count_inputs(opts.input, shard_of(opts, groups), summary.unreadable)
        decode = DecodeSettings(preprocess=bundle.preprocess, metadata_spec=bundle.dataset.get("metadata"),
                                catalog_path="", model_id=model.model_id, reuse=False)
        store = PredictionStore(catalog, model.model_id)
        plan_ref: list = []
        with progress_bar(summary.total, progress) as bar:
            todo = pending(store, iter_inputs(opts.input, shard_of(opts, groups), summary.unreadable), opts.force,
                           summary, bar)
            for window in chunks(todo, self.settings.window):
                if model.on_first_batch is not None:
                    check_first_images(model, window, decode)
                # After the check: a new export is then published, and its files are the checked ones.
                plan_ref = plan_ref or [self.ray.put(WorkerPlan.of(model, opts.threads, self.device_spec))]
                for batch in self._pipeline(window, decode, plan_ref, opts, model).iter_batches(
                        batch_size=None, batch_format="numpy"):
                    for chunk, probs in _chunks_of(batch, store, opts.force):
                        predictions, errors = chunk_rows(chunk, model, store, decode, opts, summary, probs, groups)
                        store.write_batch(predictions, errors)
                        bar.update(len(chunk.items))
                if groups is not None:  # a window's batches come in any order: release at its end
                    write_released(store, groups, model, opts, summary, keep=groups.source_of(window[-1]))
            write_released(store, groups, model, opts, summary)

    def _pipeline(self, paths: list[str], decode: DecodeSettings, plan_ref: list, opts: PredictOptions,
                  model: Classifier):
        s = self.settings
        # One block per batch: decode tasks (and so actors) get work in parallel from the start.
        # Paths travel as bytes: a file name that is not UTF-8 is still a file to classify (or to
        # report), and Arrow's strings must be UTF-8.
        ds = self.ray.data.from_items([{"path": os.fsencode(p)} for p in paths],
                                      override_num_blocks=max(1, -(-len(paths) // opts.batch_size)))
        # A decode task's memory is stated for the scheduler; that also keeps Ray Data from fusing
        # decoding into the classifier actors (it fuses map stages with equal resource requests),
        # where a GPU would wait while its actor decodes.
        pre = model.bundle.preprocess
        memory = DECODE_WORKER_MEMORY + 2 * opts.batch_size * pre.resize * pre.resize * pre.channels
        ds = ds.map_batches(decode_batch, fn_kwargs={"settings": decode}, batch_size=opts.batch_size,
                            batch_format="numpy", num_cpus=s.decode_cpus, memory=memory)
        gpus = self.gpus_per_worker() if model.runtime == "torch" else 0.0  # exported runtimes: CPU only
        return ds.map_batches(ClassifierActor, fn_constructor_kwargs={"plan_ref": plan_ref},
                              batch_size=opts.batch_size, batch_format="numpy",
                              compute=self.ray.data.ActorPoolStrategy(size=s.workers),
                              num_cpus=s.cpus_per_worker, num_gpus=gpus)


def check_first_images(model: Classifier, paths: list[str], decode: DecodeSettings) -> None:
    """The run's first-batch check (``inference.opening``), on up to CHECK_IMAGES of ``paths`` decoded
    here: an export that is not exact stops the run before any actor starts or any row is written."""
    pixels = []
    for path in paths:
        _, array = process_path(path, decode)
        if array is not None:
            pixels.append(array)
            if len(pixels) == CHECK_IMAGES:
                break
    if pixels:
        model.logits(np.stack(pixels))


def _chunks_of(batch: dict[str, np.ndarray], store: PredictionStore,
               force: bool) -> Iterator[tuple[Chunk, np.ndarray]]:
    """A returned Ray batch as the runner's Chunks; content already in the catalog becomes KNOWN.

    When the actors lag behind decoding, Ray joins several decoded blocks into one batch; it is cut
    before content seen earlier in it, so that (the caller writing each chunk before the next is
    made) the copy is reused from the row just written, as it is across predict.py's chunks.
    """
    items: list[Item] = []
    keep: list[int] = []  # decoded items: index in the chunk, and in the batch
    rows: list[int] = []
    seen: set[str] = set()
    for i, text in enumerate(batch["item"]):
        fields = json.loads(text)
        item = Item(**{**fields, "status": Status(fields["status"])})
        if item.status is Status.DECODED and not force and item.sha256 in seen:
            yield Chunk(items=items, decoded_index=keep), batch["probs"][rows]
            items, keep, rows, seen = [], [], [], set()
        if item.status is Status.DECODED and not force and store.known(item.sha256) is not None:
            item.status = Status.KNOWN
        elif item.status is Status.DECODED:
            keep.append(len(items))
            rows.append(i)
            seen.add(item.sha256)
        items.append(item)
    yield Chunk(items=items, decoded_index=keep), batch["probs"][rows]


def run_predict_ray(opts: PredictOptions, settings: RayConfig, bundle: ModelBundle, out=None,
                    progress: bool = True) -> RunSummary:
    """``run_predict`` with the Ray engine (started here unless Ray already runs in this process)."""
    from deepmars.prediction.runner import run_predict

    with RayEngine(settings, opts.device) as engine:
        return run_predict(opts, bundle, out, progress, classify=engine.classify, runs_on=engine.runs_on())
