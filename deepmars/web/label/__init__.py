"""The labeling page (``python label.py queue=... images=... classes=...``) on the shared web stack.

- ``context``: the queue, the users, and the dependencies that open the queue and name the user;
- ``schemas``: the JSON the API speaks;
- ``routers/api``: next image (leased), label, Later, undo, progress, disagreements, the image;
- ``routers/pages``: the labeling page and the review list;
- ``app``: ``create_label_app`` from ``deepmars.web.app.create_app``.

Writes need a user's token (``Authorization: Bearer``; the page keeps it in the tab's session
storage, so no cookie can be replayed by another site); the client names images by item id only.
"""
