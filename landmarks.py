"""Find salient landmarks in (large) Mars orbital images, cut 227x227 crops, and classify them.

    python landmarks.py input=path/to/images/ [output_dir=out/] [detect.nodata_mask=false] ...
        detect: an unlabeled data set in the HiRISE v1 layout plus box tables and overlays
    python landmarks.py classify input=images/ model=runs:/<run_id> catalog=catalog.sqlite
        detect, classify every crop with a trained model into predict.py's catalog (landmark rows,
        counts per class and image at posterior >= 0.9), overlays beside it; incremental
    python landmarks.py query class=crater min_count=5 catalog=catalog.sqlite
        the images with at least 5 craters

All logic lives in ``deepmars.landmarks``; every setting, with why it has its default, in
``conf/landmarks/landmarks.yaml`` (its own folder, as predict's: training's conf/model/ group would
claim the model= key). Exit codes: deepmars/landmarks/cli.py (0 ok, 2 usage, 3 some images failed,
4 could not run).
"""

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from deepmars.landmarks.cli import main as run_command
from deepmars.landmarks.cli import positional_command, usage_exit_codes


@hydra.main(version_base="1.3", config_path="conf/landmarks", config_name="landmarks")
def main(cfg: DictConfig) -> None:
    sys.exit(run_command(OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)))


if __name__ == "__main__":
    sys.argv = positional_command(sys.argv)
    with usage_exit_codes():
        main()
