"""Classify images into an incremental catalog, and query, export or merge catalogs.

    python predict.py input=new_batch/ model=runs:/<run_id>          # classify (incremental)
    python predict.py query class=wheel min_confidence=0.9            # list + counts per class
    python predict.py export output=wheel.csv class=wheel             # CSV or Parquet
    python predict.py merge input='catalog.shard-*-of-4.sqlite' catalog=all.sqlite

Config: conf/predict/predict.yaml (its own folder: training's conf/model/ group would claim
the model= key). Exit codes: deepmars/prediction/cli.py (0 ok, 2 usage, 3 some images
failed, 4 could not run).
"""

import sys

import hydra
from omegaconf import DictConfig

from deepmars.prediction.cli import main as run_command
from deepmars.prediction.cli import positional_command, usage_exit_codes


@hydra.main(version_base="1.3", config_path="conf/predict", config_name="predict")
def main(cfg: DictConfig) -> None:
    sys.exit(run_command(cfg))


if __name__ == "__main__":
    sys.argv = positional_command(sys.argv)
    with usage_exit_codes():
        main()
