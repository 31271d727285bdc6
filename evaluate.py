"""Re-evaluate a trained model: ``python evaluate.py model_uri=<run id> dataset=msl split=sol splits=[test]``.

Logic in ``deepmars.evaluation.rerun``; config in ``conf/evaluate.yaml``.
"""

import hydra
from omegaconf import DictConfig

import deepmars.config  # noqa: F401 - registers the ${deepmars_sample:...} resolver
from deepmars.cli import run_cli


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    from deepmars.evaluation.rerun import evaluate_model

    run_cli(evaluate_model, cfg)


if __name__ == "__main__":
    main()
