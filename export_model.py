"""Export a trained model for ONNX Runtime and OpenVINO, check it against eager PyTorch, measure bf16/int8.

    python export_model.py model=runs:/<run_id> dataset=msl split=sol            # fp32 (+ bf16 measured)
    python export_model.py model=runs:/<run_id> dataset=msl split=sol int8=true  # + NNCF int8

The export is saved beside the bundle (``<bundle stem>.export/``) or logged to the model's run
(``export/``); predict.py, ``landmarks.py classify`` and evaluate.py reuse it. Logic in
``deepmars.export.command``; config in ``conf/export_model/export_model.yaml`` (its own folder, as
evaluate's: training's conf/model/ group would claim the model= key). Exit codes: deepmars/cli.py.
"""

import sys

import hydra
from omegaconf import DictConfig

from deepmars.cli import help_argv, required_keys, run_cli, usage_exit_codes
from deepmars.config import ExportModelConfig  # also registers ${deepmars_sample:...} and the schema defaults
from deepmars.schema import validate


@hydra.main(version_base="1.3", config_path="conf/export_model", config_name="export_model")
def main(cfg: DictConfig) -> None:
    run_cli(validate, ExportModelConfig, cfg)  # a config mistake is reported at once, before torch is imported
    from deepmars.export.command import run_export

    run_cli(run_export, cfg)


if __name__ == "__main__":
    sys.argv = help_argv(sys.argv, {"dataset": "msl", "split": "sol"})
    required_keys(sys.argv, ("model", "dataset", "split"), __doc__.split("\n\n")[1])
    with usage_exit_codes():
        main()
