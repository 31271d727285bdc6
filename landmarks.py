"""Find salient landmarks in (large) Mars orbital images and cut 227x227 crops for HiRISENet.

``python landmarks.py input=path/to/images/ [output_dir=out/] [detect.nodata_mask=false] ...``
writes an unlabeled data set in the HiRISE v1 layout plus box tables and overlays. All logic lives
in ``deepmars.landmarks``; every setting, with why it has its default, in ``conf/landmarks.yaml``.
"""

import hydra
from omegaconf import DictConfig, OmegaConf

from deepmars.cli import run_cli


@hydra.main(version_base="1.3", config_path="conf", config_name="landmarks")
def main(cfg: DictConfig) -> int:
    from deepmars.landmarks.batch import run_from_config

    summary = run_cli(run_from_config, OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False))
    return summary.landmarks


if __name__ == "__main__":
    main()
