"""Train a Mars image classifier: ``python train.py [dataset=hirise] [experiment=...] [-m ...]``.

All logic lives in ``deepmars.training``; the config in ``conf/``. Returns the best validation
accuracy so Hydra sweepers (Optuna) can optimise it.
"""

import hydra
from omegaconf import DictConfig

import deepmars.config  # noqa: F401 - registers the ${deepmars_sample:...} resolver and the schema defaults
from deepmars.cli import run_cli, usage_exit_codes


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    from deepmars.training.per_group import train_per_group
    from deepmars.training.run import train

    return run_cli(train_per_group if cfg.get("per_group") else train, cfg)


if __name__ == "__main__":
    with usage_exit_codes():
        main()
