"""Labeling new images so they train the next model (``label.py``).

- ``classes``: the class list a queue labels with, from a data set YAML or a class file;
- ``sources``: the images to label (landmarks.py output, a predict catalog, a folder) with the
  catalog's posteriors that rank them;
- ``order``: random order or uncertainty sampling (active learning);
- ``users``: the users file (names and token hashes: no anonymous writes);
- ``export``: CSV, and label files in the data set's own format that train.py reads;
- ``labelstudio``: Label Studio tasks with pre-annotations out, its JSON export back in;
- ``options`` / ``cli``: the validated ``label.py`` config and its commands.

The queue itself (items, leases, label history) is ``deepmars.catalog.labels``.
"""
