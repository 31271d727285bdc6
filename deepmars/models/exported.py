"""Where a bundle's exported model lives, what its manifest says, and how it is found again.

An export is one folder::

    export.json              the manifest: origin (model id, bundle sha256), files with their
                             sha256, opset, tool versions, classes, preprocessing, test-time
                             views, temperature, and every check against eager PyTorch
    model.onnx               the graph (uint8 images in, logits out; see onnx_graph)
    openvino/model.xml|bin   the same graph as OpenVINO IR, float32 weights
    openvino-int8/model.*    NNCF int8 IR (only when quantized by the export command)

It sits beside the bundle it came from: ``<bundle stem>.export/`` next to a bundle file, or the
``export/`` artifact folder of the MLflow run that logged ``bundle/model.pt``. An export is used
only if its manifest names the same bundle content (sha256): a retrained file at the same path
gets a new export instead of the old network's.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from deepmars.errors import WeightsError
from deepmars.models.bundle import ModelBundle, file_digest

EXPORT_FORMAT = "deepmars-export/1"
MANIFEST = "export.json"
RUN_ARTIFACT = "export"
# What each exported file is for: the runtimes that read it.
FILES = {"onnx": "model.onnx", "openvino": "openvino/model.xml", "openvino-int8": "openvino-int8/model.xml"}


@dataclass
class Export:
    """An export folder with its manifest; ``files`` maps a kind of FILES to its record."""

    folder: Path
    manifest: dict = field(default_factory=dict)

    @property
    def files(self) -> dict:
        return self.manifest.setdefault("files", {})

    @property
    def checks(self) -> dict:
        """Measured agreement with eager fp32 per ``runtime/precision`` (see inference.agreement)."""
        return self.manifest.setdefault("checks", {})

    def path(self, kind: str) -> Path | None:
        record = self.files.get(kind)
        return None if record is None else self.folder / record["file"]

    def add_file(self, kind: str, **details) -> None:
        path = self.folder / FILES[kind]
        self.files[kind] = {"file": FILES[kind], "sha256": file_digest(path), **details}

    def verify(self, kind: str) -> Path:
        """The file of ``kind``, after checking it is the one the manifest recorded."""
        path = self.path(kind)
        if path is None or not path.is_file():
            raise WeightsError(f"export {self.folder}: no {kind} model ({FILES[kind]})")
        if file_digest(path) != self.files[kind]["sha256"]:
            raise WeightsError(f"export {self.folder}: {FILES[kind]} does not match its manifest (changed or "
                               "half-copied); delete the export folder to export again")
        return path

    def write_manifest(self) -> None:
        tmp = self.folder / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(self.manifest, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, self.folder / MANIFEST)


def new_export(bundle: ModelBundle, folder: Path) -> Export:
    pre = bundle.preprocess
    return Export(folder, {
        "format": EXPORT_FORMAT, "model_id": bundle.model_id, "bundle_sha256": bundle.sha256,
        "class_names": list(bundle.class_names), "temperature": float(bundle.temperature),
        "preprocess": pre.to_dict(), "views": list(bundle.tta),
        "files": {}, "checks": {}, "versions": tool_versions()})


def build_export(bundle: ModelBundle, folder: Path, openvino: bool) -> Export:
    """Export ``bundle`` into ``folder``: the ONNX graph, and its OpenVINO IR when ``openvino``.

    Unchecked: the caller measures it against eager PyTorch (``inference.agreement``) before
    publishing it.
    """
    from deepmars.models import onnx_graph

    export = new_export(bundle, folder)
    onnx_path = onnx_graph.export_onnx(bundle, folder / FILES["onnx"])
    export.add_file("onnx", opset=onnx_graph.opset_of(onnx_path),
                    exporter=f"torch.onnx {export.manifest['versions']['torch']}")
    if openvino:
        from deepmars.models import openvino_ir

        openvino_ir.convert_onnx(onnx_path, folder / FILES["openvino"], onnx_graph.metadata(bundle))
        export.add_file("openvino", converted_from="model.onnx")
    export.write_manifest()
    return export


def read_export(folder: Path, bundle: ModelBundle) -> Export | None:
    """The export in ``folder`` if it is one of this bundle's content, else None."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("format") != EXPORT_FORMAT or manifest.get("bundle_sha256") != bundle.sha256:
        return None
    # A graph exported before it held the test-time views gives one row per image, not one per view.
    if manifest.get("views", ["identity"]) != list(bundle.tta):
        return None
    return Export(folder, manifest)


def tool_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("torch", "onnx", "onnxruntime", "openvino", "nncf"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found


# ------------------------------------------------------------------------------ where it lives
@dataclass(frozen=True)
class ExportHome:
    """Beside a bundle file (``folder``) or in an MLflow run (``run_id``); neither for an in-memory bundle."""

    folder: Path | None = None
    run_id: str | None = None
    tracking_uri: str | None = None

    @property
    def where(self) -> str:
        if self.folder is not None:
            return str(self.folder)
        if self.run_id is not None:
            return f"runs:/{self.run_id}/{RUN_ARTIFACT}"
        return "nowhere (the model was not loaded from a file or a run)"


def export_home(bundle: ModelBundle, tracking_uri: str | None) -> ExportHome:
    """Where ``bundle``'s export belongs, from its model id (``runs:/<id>`` or ``file:<path>#<digest>``)."""
    model_id = bundle.model_id
    if model_id.startswith("runs:/"):
        from deepmars.models.loading import resolve_tracking_uri

        run_id = model_id[len("runs:/"):].split("/")[0]
        return ExportHome(run_id=run_id, tracking_uri=resolve_tracking_uri(tracking_uri))
    if model_id.startswith("file:") and "#" in model_id:
        path = Path(model_id[len("file:"):].rsplit("#", 1)[0])
        return ExportHome(folder=path.with_name(path.stem + ".export"))
    return ExportHome()


def find_export(bundle: ModelBundle, home: ExportHome, scratch: Path) -> Export | None:
    """The bundle's published export (a run's is downloaded into ``scratch``), or None."""
    if home.folder is not None:
        return read_export(home.folder, bundle)
    if home.run_id is None:
        return None
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    try:
        local = download_artifacts(run_id=home.run_id, artifact_path=RUN_ARTIFACT, dst_path=str(scratch),
                                   tracking_uri=home.tracking_uri)
    except (MlflowException, OSError):
        return None  # no export logged yet
    return read_export(Path(local), bundle)


def publish(export: Export, home: ExportHome) -> str:
    """Make ``export`` the bundle's export (replacing an older one); returns where it went.

    Beside a file: the folder is copied next to its final place and renamed into it, so a reader
    finds the old export, the new one or none (and then exports again), never half of one.
    """
    export.write_manifest()
    if home.folder is not None:
        home.folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=home.folder.name + ".", dir=home.folder.parent))
        shutil.copytree(export.folder, staging, dirs_exist_ok=True)  # never half an export at the final name
        old = None
        if home.folder.exists():
            old = home.folder.with_name(staging.name + ".old")
            os.replace(home.folder, old)
        os.replace(staging, home.folder)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        export.folder = home.folder
    elif home.run_id is not None:
        from mlflow.tracking import MlflowClient

        MlflowClient(tracking_uri=home.tracking_uri).log_artifacts(home.run_id, str(export.folder), RUN_ARTIFACT)
    return home.where


# ------------------------------------------------------------------- sent to other machines
def pack_export(export: Export) -> dict[str, bytes]:
    """Every file of ``export`` by its path in the folder: how it travels to workers that cannot see it."""
    return {p.relative_to(export.folder).as_posix(): p.read_bytes()
            for p in sorted(export.folder.rglob("*")) if p.is_file()}


def unpack_export(files: dict[str, bytes], manifest: dict, folder: Path) -> Export:
    """``pack_export``'s files written into ``folder``; ``Export.verify`` still checks each against the manifest."""
    for name, data in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return Export(folder, json.loads(json.dumps(manifest)))
