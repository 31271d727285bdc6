"""``python atlas.py demo=true``: a catalog of the embedded sample, classified by the demo model.

The demo model is the latest finished run of ``python train.py`` (HiRISE sample, MLflow experiment
``sample_hirise``) unless ``demo_model=`` names another. Into ``demo_catalog`` go:

- whole-image predictions of the 144 sample HiRISE crops (predict.py's rows);
- landmarks detected in each of those crops and classified (landmarks.py classify's rows), so
  every scene page shows real pixels with classified boxes; with ``$DEEPMARS_DATA`` set, the real
  browse image(s) in ``$DEEPMARS_DATA/hirise_browse`` as well.

Built once; a later ``demo=true`` serves the catalog as it is (delete the folder to rebuild).
"""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf

from deepmars.config import sample_root
from deepmars.errors import DataError
from deepmars.web.atlas.options import AtlasOptions

DEMO_EXPERIMENT = "sample_hirise"
CONF_DIR = Path(__file__).resolve().parents[3] / "conf"


def demo_model(opts: AtlasOptions) -> str:
    """``demo_model``, or the latest finished training run on the HiRISE sample."""
    if opts.demo_model:
        return opts.demo_model
    from mlflow.tracking import MlflowClient

    from deepmars.models.loading import resolve_tracking_uri

    try:
        uri = resolve_tracking_uri(opts.tracking_uri)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - no store: say how to make one
        raise DataError(f"no MLflow store with a demo model ({exc}); run `python train.py` first") from None
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(DEMO_EXPERIMENT)
    runs = [] if experiment is None else client.search_runs(
        [experiment.experiment_id], "attributes.status = 'FINISHED'", order_by=["attributes.start_time DESC"],
        max_results=1)
    if not runs:
        raise DataError(f"no finished `python train.py` run in {uri} (experiment {DEMO_EXPERIMENT}); run "
                        "`python train.py` first (a few minutes), or set demo_model=<bundle file or run id>")
    return f"runs:/{runs[0].info.run_id}"


def _command_config(tool: str, **values) -> dict:
    """conf/<tool>/<tool>.yaml as predict.py or landmarks.py would read it (without Hydra's own keys)."""
    cfg = OmegaConf.to_container(OmegaConf.load(CONF_DIR / tool / f"{tool}.yaml"), resolve=False)
    for hydra_key in ("defaults", "hydra"):
        cfg.pop(hydra_key, None)
    cfg.update(values)
    return cfg


def scene_inputs() -> list[str]:
    """The sample crops, and the real browse images when $DEEPMARS_DATA has them."""
    inputs = [str(Path(sample_root("hirise")) / "map-proj")]
    data = os.environ.get("DEEPMARS_DATA")
    if data and (Path(data) / "hirise_browse").is_dir():
        inputs.append(str(Path(data) / "hirise_browse"))
    return inputs


def build_demo(opts: AtlasOptions) -> Path:
    """The demo catalog, built now unless it already holds rows."""
    catalog = opts.web.catalog
    if catalog.is_file() and catalog.stat().st_size > 0:
        return catalog
    from deepmars.landmarks.batch import find_images
    from deepmars.landmarks.classify import run_classify
    from deepmars.landmarks.config import settings_from_config
    from deepmars.landmarks.options import classify_options
    from deepmars.models.loading import load_bundle
    from deepmars.prediction.options import predict_options
    from deepmars.prediction.runner import run_predict

    model = demo_model(opts)
    print(f"building the demo catalog {catalog} with model {model} (once; about a minute)", flush=True)
    bundle = load_bundle(model, opts.tracking_uri)
    crops = str(Path(sample_root("hirise")) / "map-proj")
    predict = _command_config("predict", input=crops, model=model, catalog=str(catalog),
                              tracking_uri=opts.tracking_uri, num_workers=0)
    run_predict(predict_options(predict), bundle)
    landmarks = _command_config("landmarks", command="classify", input=scene_inputs(), model=model,
                                catalog=str(catalog), tracking_uri=opts.tracking_uri,
                                output_dir=str(catalog.parent / "landmarks"))  # detect's only: unused here
    run_classify(find_images(classify_options(landmarks).input), settings_from_config(landmarks),
                 classify_options(landmarks), bundle)
    return catalog
