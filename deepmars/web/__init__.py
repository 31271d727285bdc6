"""Web front ends over the catalog (FastAPI + Jinja2, no JavaScript build chain).

Shared by every app (the Atlas search in ``atlas/``, and any later one such as a labeling tool):

- ``settings``: what every app is configured with (catalog, address, image cache, image roots);
- ``database``: the catalog opened read-only (``mode=ro``), checked once at start, a connection per
  request handed out by the ``read_db`` dependency;
- ``files``: stored catalog path -> file on disk (one function), the rule for which files may be
  served, and JPEG renditions (thumbnails, display copies) made with PIL and cached on disk;
- ``app``: ``create_app`` wires settings, database, templates (base.html, autoescape on), static
  files and routers into one FastAPI app; nothing lives in module globals;
- ``server``: runs an app with uvicorn on 127.0.0.1 (or ``host=``) and says where.
"""
