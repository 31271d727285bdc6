"""GET /api/export.csv: every row of the current search as CSV, streamed (constant memory)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from deepmars.web.atlas import images, scenes
from deepmars.web.atlas.filters import Filters, search_filters

router = APIRouter(tags=["export"])
CHUNK_ROWS = 2000


def _lines(request: Request, filters: Filters) -> Iterator[str]:
    """CSV text in chunks; the connection is held by the stream itself, for as long as it runs."""
    ctx = request.app.state.atlas
    with request.app.state.catalog.connection() as conn:
        conn.execute("BEGIN")  # one snapshot, however long the stream (the pool rolls it back)
        facts = ctx.facts(conn)
        parsed = ctx.vocabulary(conn).parse(filters.text)
        if filters.kind == "images":
            cursor = images.export_rows(conn, images.Query.of(filters, parsed))
        else:
            cursor = scenes.export_rows(conn, scenes.scene_query(filters, parsed, facts.count_confidence,
                                                                 facts.scene_models))
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([c[0].removeprefix("s.") for c in cursor.description])
        while rows := cursor.fetchmany(CHUNK_ROWS):
            writer.writerows(rows)
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        yield buffer.getvalue()


@router.get("/api/export.csv", response_class=StreamingResponse, summary="The whole result set as CSV (streamed)")
def export_csv(request: Request, filters: Filters = Depends(search_filters)) -> StreamingResponse:
    return StreamingResponse(_lines(request, filters), media_type="text/csv",
                             headers={"Content-Disposition": f'attachment; filename="atlas-{filters.kind}.csv"'})
