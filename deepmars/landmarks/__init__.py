"""Landmark detector and cropper for (large) map-projected Mars orbital images.

Modules, one concept each:
    salience  exact per-pixel salience, running-histogram kernel (numba)
    nodata    the black border triangles of map-projected products
    reader    a source image at working scale, reduced while decoding
    detect    salience -> threshold -> regions (tiled, multi-scale)
    crops     square box + margin -> 227x227 grey JPEG
    pipeline  one image -> landmarks + crops (the seam for classification)
    overlay   boxes drawn on the downsampled image, coloured by class
    outputs   the HiRISE-v1-layout data set folder and its tables
    batch     many images, bad ones reported: the detect command
    classify  landmarks -> a trained model -> the prediction catalog and overlays: the classify command
    store     the catalog's landmark tables: skip look-ups and per-image transactions
    query     images with at least N landmarks of a class: the query command
    options   classify/query settings; cli: the landmarks.py commands and exit codes
    synthetic generated scenes with known landmarks (tests, benchmark)
"""

from deepmars.landmarks.config import LandmarkSettings, settings_from_config
from deepmars.landmarks.landmark import Landmark
from deepmars.landmarks.overlay import write_overlay
from deepmars.landmarks.pipeline import ImageLandmarks, process_image

__all__ = ["ImageLandmarks", "Landmark", "LandmarkSettings", "process_image", "settings_from_config", "write_overlay"]
