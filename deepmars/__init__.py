"""deepmars: classify Mars images by content (MSLNet, HiRISENet and beyond)."""

__version__ = "0.1.0"
