"""Classifying new batches of images into an incremental, crash-safe SQLite catalog.

Modules, one concept each: ``inputs`` (which files, in which order, which shard), ``decode``
(worker processes: hash and decode), ``worker_exit`` (workers end when the main process dies), ``catalog`` (the SQLite schema and its writes), ``runner``
(the predict pipeline), ``queries`` (query and export), ``merge`` (combining shard catalogs),
``options`` (config validation) and ``cli`` (the ``predict.py`` commands).
"""
