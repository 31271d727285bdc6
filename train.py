"""Train a Mars image classifier: ``python train.py [dataset=hirise] [experiment=...] [-m ...]``.

All logic lives in ``deepmars.training``; the config in ``conf/``. Returns the best validation
accuracy so Hydra sweepers (Optuna) can optimise it.
"""

import sys

import hydra
from omegaconf import DictConfig

from deepmars.cli import run_cli, usage_exit_codes
from deepmars.config import validate  # also registers ${deepmars_sample:...} and the schema defaults
from deepmars.training.hydra_ranks import hydra_argv


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    run_cli(validate, cfg)  # a config mistake is reported at once, before torch is even imported
    from deepmars.training.per_group import train_per_group
    from deepmars.training.run import train

    return run_cli(train_per_group if cfg.get("per_group") else train, cfg)


if __name__ == "__main__":
    sys.argv = hydra_argv(sys.argv)  # under torchrun: one Hydra output folder (rank 0's), not one per process
    with usage_exit_codes():
        main()
