"""The audit trail as a person reads it (labels, links, key/value details) and its CSV as a spreadsheet reads it."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.test import Client

from governance import audit_display
from governance.cards import services as card_services
from governance.exports import COLUMNS
from governance.models import AuditEvent
from registry import services as registry_services
from registry.spreadsheet import csv_cell

pytestmark = pytest.mark.django_db


def _csv_rows(response) -> list[dict[str, str]]:
    raw = b"".join(response.streaming_content)
    assert raw.startswith("\ufeff".encode())  # a spreadsheet opens it as UTF-8
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


def test_csv_round_trips_every_cell_and_neutralises_only_formulas(protected, team, owner, client):
    model = protected["model"]
    registry_services.model_tag_set(model=model, actor=owner, key="formula", value='=HYPERLINK("http://x")')
    registry_services.version_tag_set(version=protected["v2"], actor=owner, key="note",
                                      value="-1 + 2, « naïve » line one\nline two")
    client.force_login(owner)
    response = client.get("/audit/", {"export": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = _csv_rows(response)
    events = list(AuditEvent.objects.order_by("seq"))
    assert [int(r["seq"]) for r in rows] == [e.seq for e in events]
    stray_quotes = 0
    for row, event in zip(rows, events, strict=True):
        assert list(row) == list(COLUMNS)
        assert json.loads(row["data"]) == event.data
        for column in COLUMNS:
            value = getattr(event, column)
            if column == "created_at":
                assert row[column].startswith(event.created_at.strftime("%Y-%m-%dT%H:%M:%S"))
                continue
            if column == "data":
                continue
            expected = "" if value is None else str(value)
            if expected[:1] in ("=", "+", "-", "@") and csv_cell(expected) != expected:
                assert row[column] == "'" + expected
            else:
                assert row[column] == expected, (column, event.seq)
            stray_quotes += row[column] == "'"
    assert stray_quotes == 0  # an empty cell stays empty
    assert any(row["token_prefix"] == "" and row["client_ip"] == "" for row in rows)
    tagged = next(r for r in rows if r["action"] == "registered_model.tag_set")
    assert json.loads(tagged["data"])["after"] == '=HYPERLINK("http://x")'
    noted = next(r for r in rows if r["action"] == "model_version.tag_set")
    assert "« naïve » line one\nline two" in json.loads(noted["data"])["after"]


def test_csv_cell_guard():
    assert csv_cell("") == "" and csv_cell(None) == ""
    assert csv_cell("=1+1") == "'=1+1" and csv_cell("@SUM(A1)") == "'@SUM(A1)" and csv_cell("+x") == "'+x"
    assert csv_cell("-0.5") == "-0.5" and csv_cell(-3) == "-3" and csv_cell("plain") == "plain"
    assert csv_cell("\tcmd") == "'\tcmd"


def test_a_label_from_a_database_id_never_reaches_the_page(protected, team, owner, make_version, client):
    other = registry_services.model_create(actor=owner, name="other")
    for _ in range(3):  # so database ids and version numbers differ
        make_version(other, owner)
    v3 = make_version(protected["model"], owner)
    assert v3.pk != v3.number
    card_services.card_create(version=v3, actor=owner)
    event = AuditEvent.objects.get(action="model_card.created")
    shown = audit_display.target(event)
    assert shown.label == "Model card of churn v3"
    assert shown.url == "/models/churn/versions/3/card/"

    client.force_login(owner)
    body = client.get("/audit/", {"model": "churn", "action": "model_card.created"}).content.decode()
    assert "Model card of churn v3" in body and 'href="/models/churn/versions/3/card/"' in body
    assert f"model card of version {v3.pk}" not in body
    assert "Model card created" in body and '<details class="audit-details">' in body


def test_details_are_key_value_rows_in_full():
    rows = audit_display.detail_rows({"alias": "champion", "from_version": None, "to_version": 12,
                                      "reason": "x" * 300, "steps": [{"weight": 10}], "full": True,
                                      "approved_by": ["r1", "r2"]})
    assert ("alias", "champion") in rows and ("from version", "—") in rows and ("to version", "12") in rows
    assert ("reason", "x" * 300) in rows and ("full", "yes") in rows and ("steps", '[{"weight": 10}]') in rows
    assert ("approved by", "r1, r2") in rows
    summary = audit_display.detail_summary(rows)
    assert summary.startswith("alias: champion") and "+4 more" in summary


def test_action_labels_read_as_words():
    assert audit_display.action_label("model_version_alias.set") == "Alias moved"
    assert audit_display.action_label("promotion.approved") == "Promotion approved"
    assert audit_display.action_label("deployment.rolled_back") == "Deployment rolled back"
    assert audit_display.action_label("model_version.stage_transitioned") == "Version stage changed"


class _Event:
    def __init__(self, **kw):
        self.__dict__.update({"target_id": "", "target_label": "", "model_name": "", "version_number": None,
                              "data": {}, **kw})


def test_deployment_events_name_their_endpoint_and_link_to_it():
    event = _Event(target_type="deployments.deployment", target_id="4", target_label="deployment #4 on 4",
                   model_name="iris", version_number=3, data={"endpoint": "iris-staging", "deployment": 4})
    shown = audit_display.target(event)
    assert shown.label == "Deployment #4 of endpoint iris-staging, iris v3"
    assert shown.url == "/deployments/iris-staging/"


def test_audit_page_as_viewer_keeps_working(protected, team):
    c = Client()
    c.force_login(team["viewer"])
    assert c.get("/audit/").status_code == 200


def test_lineage_edges_read_as_upstream_to_downstream():
    event = _Event(target_type="registry.lineageedge", target_id="72", target_label="72 deployed as 31",
                   data={"kind": "deployed_as", "upstream": 31, "downstream": 72,
                         "upstream_label": "Model version iris v3", "downstream_label": "Deployment iris-staging#4 3"})
    shown = audit_display.target(event)
    assert shown.label == "Model version iris v3 → Deployment iris-staging#4 3 (deployed as)"
    assert shown.url == "/lineage/nodes/72/"
