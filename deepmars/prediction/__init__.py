"""Classifying new batches of images into an incremental, crash-safe SQLite catalog.

Modules, one concept each: ``inputs`` (which files, in which order, which shard), ``decode``
(worker processes: hash and decode), ``worker_exit`` (workers end when the main process dies),
``runner`` (the predict pipeline), ``queries`` (query and export), ``options`` (config validation)
and ``cli`` (the ``predict.py`` commands). The catalog itself (schema, writes, merge) is
``deepmars.catalog``.
"""
