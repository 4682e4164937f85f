"""Stream audit events as CSV or JSON (pages and API share it); memory stays flat whatever the range."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse

from governance.models import AuditEvent
from governance.timestamps import iso
from registry.spreadsheet import csv_cell

COLUMNS = ("seq", "created_at", "actor_username", "token_prefix", "action", "target_type", "target_id",
           "target_label", "model_name", "version_number", "data", "request_id", "client_ip", "prev_hash", "hash")
CHUNK = 2000


def event_row(event: AuditEvent) -> dict[str, Any]:
    """Return one event as a plain dict of the exported columns."""
    row = {name: getattr(event, name) for name in COLUMNS}
    row["created_at"] = iso(event.created_at)
    return row


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv(events: QuerySet[AuditEvent]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    # A byte-order mark first, so a spreadsheet opens the file as UTF-8 (names and reasons need not be ASCII).
    yield "\ufeff" + writer.writerow(COLUMNS)
    for event in events.iterator(chunk_size=CHUNK):
        row = event_row(event)
        row["data"] = json.dumps(row["data"], sort_keys=True, ensure_ascii=False)
        # Every cell through the one formula guard (an empty cell stays empty, a number stays a number).
        yield writer.writerow([csv_cell(row[k]) for k in COLUMNS])


def _json(events: QuerySet[AuditEvent]) -> Iterator[str]:
    yield "["
    first = True
    for event in events.iterator(chunk_size=CHUNK):
        yield ("" if first else ",\n") + json.dumps(event_row(event), ensure_ascii=False, sort_keys=True)
        first = False
    yield "]\n"


def export_response(events: QuerySet[AuditEvent], kind: str) -> StreamingHttpResponse:
    """Return a streamed download of `events` (oldest first) as 'csv' or 'json'."""
    events = events.order_by("seq")
    if kind == "csv":
        response = StreamingHttpResponse(_csv(events), content_type="text/csv; charset=utf-8")
    else:
        response = StreamingHttpResponse(_json(events), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="stratum-audit.{kind}"'
    return response
