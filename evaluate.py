"""Re-evaluate a trained model: ``python evaluate.py model=<run id> dataset=msl split=sol splits=[test]``.

Logic in ``deepmars.evaluation.rerun``; config in ``conf/evaluate/evaluate.yaml`` (its own folder,
as predict's: training's conf/model/ group would claim the model= key). Exit codes: deepmars/cli.py.
"""

import sys

import hydra
from omegaconf import DictConfig

from deepmars.cli import help_argv, run_cli, usage_exit_codes
from deepmars.config import EvaluateConfig  # also registers ${deepmars_sample:...} and the schema defaults
from deepmars.schema import validate


@hydra.main(version_base="1.3", config_path="conf/evaluate", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    run_cli(validate, EvaluateConfig, cfg)  # a config mistake is reported at once, before torch is imported
    from deepmars.evaluation.rerun import evaluate_model

    run_cli(evaluate_model, cfg)


if __name__ == "__main__":
    sys.argv = help_argv(sys.argv, {"dataset": "msl", "split": "sol"})
    with usage_exit_codes():
        main()
