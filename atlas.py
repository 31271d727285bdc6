"""Search the catalog in a web browser: ``python atlas.py catalog=catalog.sqlite`` -> http://127.0.0.1:8000

    python atlas.py catalog=catalog.sqlite [host=127.0.0.1] [port=8000]   # serve, read-only
    python atlas.py demo=true          # build (once) and serve a catalog of the embedded sample
    python atlas.py upgrade catalog=old.sqlite    # migrate an older catalog in place, once

All logic lives in ``deepmars.web.atlas``; the config in ``conf/atlas/`` (its own folder, as
predict's). Exit codes: deepmars/cli.py (0 ok, 2 usage, 4 could not run, 130 interrupted).
"""

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from deepmars.web.atlas.cli import main as run_command
from deepmars.web.atlas.cli import positional_command, usage_exit_codes


@hydra.main(version_base="1.3", config_path="conf/atlas", config_name="atlas")
def main(cfg: DictConfig) -> None:
    sys.exit(run_command(OmegaConf.to_container(cfg, resolve=True)))


if __name__ == "__main__":
    sys.argv = positional_command(sys.argv)
    with usage_exit_codes():
        main()
