"""The Atlas: search the catalog by content in a web browser (``python atlas.py``).

- ``options``: conf/atlas/atlas.yaml validated into ``AtlasOptions``;
- ``vocabulary``: free text -> classes (names and synonyms) + FTS5 terms, and suggestions for typos;
- ``filters``: what a search asks for (``Filters``) and the keyset cursor of a result page;
- ``images`` / ``scenes``: result pages, totals and facet counts over ``predictions`` (whole images)
  and ``landmark_images`` (HiRISE scenes with classified landmarks);
- ``routers/``: one APIRouter per concept (catalog, search, images, scenes, export, pages);
- ``app``: the Atlas app on the shared web stack (``deepmars.web``); ``cli``: serve and upgrade;
  ``demo``: a catalog built from the embedded sample with the demo model.
"""
