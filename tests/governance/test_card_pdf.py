"""The card PDF: one axis per metric, readable lineage labels, sizes with units, DRAFT on every page of a card
that is not approved."""

from __future__ import annotations

import base64
import io
import re

import pytest
from pypdf import PdfReader

from governance.cards import pdf, services, svg
from tests.governance.test_cards import fill

pytestmark = pytest.mark.django_db


def _pages(data: bytes) -> list[str]:
    return [page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages]


def _svg(uri: str) -> str:
    return base64.b64decode(uri.split(",", 1)[1]).decode()


@pytest.fixture
def draft(protected, team):
    return fill(services.card_create(version=protected["v2"], actor=team["engineer"]), team["engineer"])


def test_every_page_of_a_card_that_is_not_approved_says_draft(draft, team):
    for card in (draft, services.card_submit(card=draft, actor=team["engineer"])):  # draft, then in review
        pages = _pages(pdf.render_pdf([card], team["r1"]))
        assert len(pages) >= 4
        assert all("DRAFT" in text for text in pages), [i for i, t in enumerate(pages) if "DRAFT" not in t]


def test_an_approved_card_carries_no_draft_mark(draft, team):
    card = services.card_approve(card=services.card_submit(card=draft, actor=team["engineer"]), actor=team["r1"])
    pages = _pages(pdf.render_pdf([card], team["r1"]))
    assert not any("DRAFT" in text for text in pages)


def test_a_mixed_export_marks_only_the_draft_card(draft, team, protected, make_version, owner):
    approved = services.card_approve(card=services.card_submit(card=draft, actor=team["engineer"]),
                                     actor=team["r1"])
    other = fill(services.card_create(version=protected["v1"], actor=owner), owner)
    pages = _pages(pdf.render_pdf([approved, other], team["r1"]))
    marked = ["DRAFT" in text for text in pages]
    assert marked[0] is False and marked[-1] is True
    assert marked == sorted(marked)  # the approved card's pages first, then only draft pages


def test_each_metric_gets_its_own_axis(draft, team):
    content = dict(draft.content)
    content["metrics"] = {**content["metrics"], "performance_measures": [
        {"name": "r2", "value": 0.5}, {"name": "rmse", "value": 52.0}]}
    draft.content = content
    doc = pdf.card_document(draft, team["r1"])
    charts = {c["metric"]: _svg(c["uri"]) for c in doc["metric_charts"]}
    assert set(charts) == {"r2", "rmse"}
    ticks = {name: re.findall(r'fill="#9aa5b1">([^<]+)</text>', markup) for name, markup in charts.items()}
    assert ticks["r2"] == ["0", "0.5", "1"] and ticks["rmse"] == ["0", "50", "100"]


def test_axis_domain_handles_scores_large_values_and_negatives():
    assert svg.axis_domain([0.5, 0.93]) == (0.0, 1.0)
    assert svg.axis_domain([52.0]) == (0.0, 100.0)
    assert svg.axis_domain([-0.2, 0.7]) == (-0.2, 1.0)
    assert svg.axis_domain([1234.0]) == (0.0, 2000.0)


def test_lineage_labels_wrap_instead_of_being_cut():
    lines = svg.wrap_label("breast-cancer-classifier-staging#12 3", width=26)
    assert "".join(lines).replace(" ", "") == "breast-cancer-classifier-staging#123"
    assert all(len(line) <= 26 for line in lines)
    markup = svg.lineage_diagram([{"id": 1, "kind": "deployment", "label": "breast-cancer-classifier-staging#12 3"},
                                  {"id": 2, "kind": "model_version", "label": "breast-cancer-classifier v5"}],
                                 [(2, 1)])
    assert "staging#12" in markup and "<title>breast-cancer-classifier-staging#12 3</title>" in markup
    very_long = svg.wrap_label("x" * 100, width=20, lines=2)
    assert len(very_long) == 2 and very_long[-1].endswith("x") and "…" in very_long[-1]


def test_artifact_sizes_have_units(protected, team, make_version, owner):
    version = make_version(protected["model"], owner, files={"model.onnx": b"\x08" * 2048})
    card = services.card_create(version=version, actor=owner)
    text = "\n".join(_pages(pdf.render_pdf([card], team["r1"])))
    assert re.search(r"model\.onnx\s+\S+\s+2\.0\s?KB", text), text[text.find("model.onnx") - 50:][:200]
