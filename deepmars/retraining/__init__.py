"""From new labels to a new model, cheaply: frozen-feature caches, a linear head retrained on
old + newly labeled images, and the simulation of the labeling loop on a delivery whose true
labels stand in for a person (``scripts/simulate_retraining.py``, ``docs/retraining.md``).
"""
