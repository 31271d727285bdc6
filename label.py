"""Label images so they train the next model; export the labels as the data set's own files.

    python label.py queue=labels.sqlite images=landmarks_out/ classes=hirise       # queue, serve the page
    python label.py status queue=labels.sqlite                                       # progress
    python label.py export queue=labels.sqlite format=dataset output=labeled/        # train.py reads it
    python label.py adduser name=alice users=users.txt                               # prints a token

All logic lives in ``deepmars.labeling`` (the queue in ``deepmars.catalog.labels``); every
setting in ``conf/label/label.yaml`` (its own folder, as predict's). Exit codes: deepmars/cli.py.
"""

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from deepmars.labeling.cli import main as run_command
from deepmars.labeling.cli import positional_command, usage_exit_codes


@hydra.main(version_base="1.3", config_path="conf/label", config_name="label")
def main(cfg: DictConfig) -> None:
    sys.exit(run_command(OmegaConf.to_container(cfg, resolve=True)))


if __name__ == "__main__":
    sys.argv = positional_command(sys.argv)
    with usage_exit_codes():
        main()
