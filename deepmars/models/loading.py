"""Find a trained model bundle from whatever a user names: a file, a run, or a registered model.

Accepted sources (``model=`` on the command line):

- a bundle file path (``checkpoints/best/model.pt``);
- ``runs:/<run_id>`` or ``runs:/<run_id>/<artifact path>``, or a bare run id (32 hex digits);
- ``models:/<name>/<version>``, ``models:/<name>@<alias>``, or a registered model name (its
  latest version).

Convention shared with training: every training run logs its bundle as the MLflow artifact
``bundle/model.pt``; resolving a run means downloading that file. The catalog's model id is
``runs:/<run_id>`` however the run was named (so ``models:/mslnet@prod`` and the run it points to
share rows), or ``file:<absolute path>#<sha256[:12]>`` for a file.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from deepmars.errors import WeightsError
from deepmars.models.bundle import ModelBundle, file_digest

DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"
BUNDLE_ARTIFACT = "bundle/model.pt"
BUNDLE_FILE_NAME = "model.pt"
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_FILE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")
SOURCE_FORMS = ("a bundle file path", "runs:/<run_id>[/<artifact path>]", "a run id (32 hex digits)",
                "models:/<name>/<version>", "models:/<name>@<alias>", "a registered model name")


@dataclass(frozen=True)
class ModelSource:
    """A resolved source: a local file, or an artifact of one MLflow run."""

    model_id: str
    path: Path | None = None
    run_id: str | None = None
    artifact_path: str = BUNDLE_ARTIFACT
    tracking_uri: str | None = None


def resolve_tracking_uri(tracking_uri: str | None) -> str:
    """The default store, or ``tracking_uri``; a relative sqlite path is taken from the working dir."""
    uri = tracking_uri or DEFAULT_TRACKING_URI
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = "sqlite:///" + os.path.abspath(uri[len("sqlite:///"):])
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///"):])
        if not db.is_file():
            raise WeightsError(f"no MLflow store at {db} (tracking_uri={tracking_uri or DEFAULT_TRACKING_URI}); "
                               "train a model first, or set tracking_uri=... to the store that has the run")
    return uri


def file_model_id(path: str | Path) -> str:
    """Model id of a bundle file: where it is and what it holds (a retrained file gets a new id)."""
    path = Path(path)
    return f"file:{path.resolve()}#{file_digest(path)[:12]}"


def resolve_source(source: str, tracking_uri: str | None = None) -> ModelSource:
    """Turn a user's model source into a file or a run artifact, without loading any weights."""
    source = str(source).strip()
    if not source:
        raise WeightsError("model: empty model source; give " + ", ".join(SOURCE_FORMS))
    if os.path.isfile(source):
        return ModelSource(model_id=file_model_id(source), path=Path(source))
    if source.startswith("runs:/"):
        run_id, _, artifact = source[len("runs:/"):].strip("/").partition("/")
        return _run_source(run_id, artifact or BUNDLE_ARTIFACT, tracking_uri)
    if source.startswith("models:/"):
        return _registry_source(source[len("models:/"):].strip("/"), tracking_uri)
    if source.lower().endswith(_FILE_SUFFIXES) or os.sep in source:
        raise WeightsError(f"model: file {os.path.abspath(source)} not found (model= takes "
                           + ", ".join(SOURCE_FORMS) + ")")
    if _RUN_ID.match(source):
        return _run_source(source, BUNDLE_ARTIFACT, tracking_uri)
    return _registry_source(source, tracking_uri)


def load_bundle(source: str, tracking_uri: str | None = None) -> ModelBundle:
    """The ModelBundle named by ``source`` (see the module docstring), with its catalog model id."""
    resolved = resolve_source(source, tracking_uri)
    if resolved.path is not None:
        return ModelBundle.load(resolved.path, model_id=resolved.model_id)
    with tempfile.TemporaryDirectory(prefix="deepmars-model-") as tmp:
        local = _download(resolved, Path(tmp))
        return ModelBundle.load(local, model_id=resolved.model_id)


def _client(tracking_uri: str | None):
    from mlflow.tracking import MlflowClient  # slow import: only when a run is named

    uri = resolve_tracking_uri(tracking_uri)
    return MlflowClient(tracking_uri=uri), uri


def _is_missing(exc: Exception) -> bool:
    return getattr(exc, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


def _run_source(run_id: str, artifact_path: str, tracking_uri: str | None) -> ModelSource:
    from mlflow.exceptions import MlflowException

    client, uri = _client(tracking_uri)
    try:
        client.get_run(run_id)
    except MlflowException as exc:
        if not _is_missing(exc):
            raise WeightsError(f"model: cannot read MLflow run {run_id} from {uri}: {exc.message}") from None
        raise WeightsError(f"model: no MLflow run {run_id!r} in {uri} (set tracking_uri=... if the "
                           "run lives in another store)") from None
    return ModelSource(model_id=f"runs:/{run_id}", run_id=run_id, artifact_path=artifact_path,
                       tracking_uri=uri)


def _registry_source(spec: str, tracking_uri: str | None) -> ModelSource:
    """``name``, ``name/version`` or ``name@alias`` -> the run that version was registered from."""
    from mlflow.exceptions import MlflowException

    client, uri = _client(tracking_uri)
    name, alias, version = spec, None, None
    if "@" in spec:
        name, alias = spec.rsplit("@", 1)
    elif "/" in spec:
        name, version = spec.rsplit("/", 1)
    try:
        if alias is not None:
            mv = client.get_model_version_by_alias(name, alias)
        elif version is not None:
            mv = client.get_model_version(name, version)
        else:
            mv = _latest_version(client, name)
    except MlflowException as exc:
        what = (f"alias {alias!r}" if alias else f"version {version}" if version else "any version")
        raise WeightsError(f"model: registered model {name!r} has no {what} in {uri} ({exc.message}); "
                           f"model= takes " + ", ".join(SOURCE_FORMS)) from None
    if mv is None:
        raise WeightsError(f"model: {spec!r} is not a file, a run, or a registered model in {uri}; "
                           f"model= takes " + ", ".join(SOURCE_FORMS))
    if not mv.run_id:
        raise WeightsError(f"model: {name} version {mv.version} was not registered from a run; deepmars "
                           f"loads the {BUNDLE_ARTIFACT} artifact of the training run")
    return _run_source(mv.run_id, BUNDLE_ARTIFACT, uri)


def _latest_version(client, name: str):
    quoted = name.replace("'", "\\'")
    versions = client.search_model_versions(f"name='{quoted}'")
    return max(versions, key=lambda mv: int(mv.version)) if versions else None


def _download(source: ModelSource, dest: Path) -> Path:
    """Download the run's bundle artifact; a folder artifact must hold ``model.pt``."""
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    artifact = source.artifact_path.strip("/")
    try:
        local = Path(download_artifacts(run_id=source.run_id, artifact_path=artifact,
                                        dst_path=str(dest), tracking_uri=source.tracking_uri))
    except (MlflowException, OSError) as exc:
        raise WeightsError(
            f"model: run {source.run_id} has no artifact {artifact!r} ({_listing(source)}); deepmars "
            f"training runs log their model bundle as {BUNDLE_ARTIFACT} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None
    if local.is_dir():
        local = local / BUNDLE_FILE_NAME
        if not local.is_file():
            raise WeightsError(f"model: artifact folder {artifact!r} of run {source.run_id} has no "
                               f"{BUNDLE_FILE_NAME} ({_listing(source, artifact)})")
    return local


def _listing(source: ModelSource, folder: str | None = None) -> str:
    """What the run does have, so the message shows the right name to use."""
    from mlflow.tracking import MlflowClient

    try:
        files = MlflowClient(tracking_uri=source.tracking_uri).list_artifacts(source.run_id, folder)
    except Exception:  # noqa: BLE001 - the listing only decorates an error message
        return "its artifacts could not be listed"
    names = [f.path + ("/" if f.is_dir else "") for f in files]
    return "its artifacts: " + (", ".join(names) if names else "none")
