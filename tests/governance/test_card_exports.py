"""Model card exports: PDF text and pixels, the locked-down fetcher (SSRF), MCT JSON and HF Markdown."""

from __future__ import annotations

import io
import shutil
import socket
import subprocess
import threading

import pytest
import yaml
from pypdf import PdfReader

from governance.cards import exports, pdf, services
from tests.conftest import need_service
from tests.governance.test_cards import fill


@pytest.fixture
def card(protected, team):
    """A complete, approved card of v2, with one promotion decision on record."""
    engineer = team["engineer"]
    c = fill(services.card_create(version=protected["v2"], actor=engineer), engineer)
    c = services.card_submit(card=c, actor=engineer)
    return services.card_approve(card=c, actor=team["r1"], comment="Checked against the data sheet.")


def _text(data: bytes) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


def test_pdf_holds_the_sections_values_approvals_hashes_and_page_numbers(card, team):
    data = pdf.render_pdf([card], team["r1"])
    assert data.startswith(b"%PDF")
    text = _text(data)
    for expected in ("Model card: churn", "Contents", "Intended use", "Factors", "Quantitative analyses",
                     "Ethical considerations", "Caveats and recommendations", "Human oversight",
                     "Retention offers.", "Credit decisions.", "Approval record", "card approved", "r1",
                     "Checked against the data sheet.", "events-2026", "Page 1 of", card.sha256[:32]):
        assert expected in text.replace("\n", " ") or expected in text, expected
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) >= 4
    assert "/EmbeddedFiles" not in str(reader.trailer["/Root"].get("/Names", {}))


def test_pdf_pages_render_to_non_blank_png(card, team, tmp_path):
    from PIL import Image

    if shutil.which("pdftoppm") is None:
        need_service("pdftoppm", "poppler-utils is not installed (apt-get install poppler-utils; .ci/run does)")

    path = tmp_path / "card.pdf"
    path.write_bytes(pdf.render_pdf([card], team["r1"]))
    subprocess.run(["pdftoppm", "-png", "-r", "30", "-f", "1", "-l", "6", str(path), str(tmp_path / "page")],
                   check=True, timeout=60)
    pages = sorted(tmp_path.glob("page*.png"))
    assert len(pages) >= 4
    for page in pages:
        extrema = Image.open(page).convert("L").getextrema()
        assert extrema[0] < 200, f"{page.name} is blank"


class _Listener:
    """A loopback TCP listener that counts every connection it accepts."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.hits = 0
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.hits += 1
            conn.close()

    def close(self) -> None:
        self._stop = True
        self.thread.join(2)
        self.sock.close()


@pytest.fixture
def listener():
    probe = _Listener()
    yield probe
    probe.close()


def test_pdf_fetches_nothing_from_hostile_content(card, team, listener):
    base = f"http://127.0.0.1:{listener.port}"
    hostile = (f"<link rel=attachment href=file:///etc/passwd>\n<img src={base}/meta.png>\n"
               f"<style>@import url({base}/x.css);</style>\n\n![probe]({base}/md.png)\n\n"
               f"[link]({base}/a) ![local](file:///etc/passwd) ![rel](../../../../etc/passwd)")
    card.state = "draft"
    card.save(update_fields=["state"])
    card = services.card_update(card=card, actor=team["engineer"], section="factors",
                                values={"relevant_factors": hostile})
    fetcher = pdf.LockedFetcher()
    data = pdf.render_pdf([card], team["r1"], fetcher=fetcher)
    assert listener.hits == 0
    assert any("127.0.0.1" in url for url in fetcher.refused)
    assert b"/EmbeddedFile" not in data and b"root:x:0:0" not in data


def test_the_fetcher_refuses_everything_but_assets_and_data_even_in_raw_html(listener):
    from weasyprint import HTML

    base = f"http://127.0.0.1:{listener.port}"
    raw = (f"<html><head><link rel=attachment href=file:///etc/passwd><link rel=stylesheet href={base}/s.css>"
           f"<style>@import url({base}/i.css); body {{ background: url({base}/bg.png) }}</style></head>"
           f"<body><img src={base}/a.png><img src=http://169.254.169.254/latest/meta-data/>"
           f"<a rel=attachment href={base}/att.bin>att</a><img src=\"{pdf.ASSET_BASE}mark.svg\">"
           f"<img src=\"{pdf.ASSET_BASE}../pdf.py\"><img src=\"data:image/svg+xml;base64,"
           f"PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciLz4=\"></body></html>")
    fetcher = pdf.LockedFetcher()
    data = HTML(string=raw, base_url=pdf.ASSET_BASE, url_fetcher=fetcher).write_pdf()
    assert listener.hits == 0
    assert b"/EmbeddedFile" not in data
    assert f"{pdf.ASSET_BASE}mark.svg" in fetcher.served and "data:" in fetcher.served
    assert "file:///etc/passwd" in fetcher.refused and "http://169.254.169.254/latest/meta-data/" in fetcher.refused
    assert any(url.endswith("pdf.py") for url in fetcher.refused)


def test_the_fetcher_stops_after_its_time_limit():
    fetcher = pdf.LockedFetcher(time_limit=-1)
    with pytest.raises(pdf.RefusedURL, match="time limit"):
        fetcher.fetch("data:text/plain,hello")


def test_markdown_export_has_hugging_face_front_matter(card):
    text = exports.card_markdown(card)
    assert text.startswith("---\n")
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["license"] == "apache-2.0"
    assert front["datasets"] == ["events-2026"]
    assert set(front["metrics"]) == {"auc", "loss"}
    result = front["model-index"][0]["results"][0]
    assert {m["type"] for m in result["metrics"]} == {"auc", "loss"}
    assert "## Intended use" in text and "Credit decisions." in text


def test_mct_export_uses_the_model_card_toolkit_layout(card):
    mct = exports.card_mct(card)
    assert mct["schema_version"] == "0.0.2"
    assert mct["model_details"]["name"] == "churn"
    assert mct["model_details"]["licenses"] == [{"identifier": "apache-2.0"}]
    perf = mct["quantitative_analysis"]["performance_metrics"]
    eu = next(p for p in perf if p["slice"] == "EU")
    assert eu["confidence_interval"] == {"lower_bound": "0.81", "upper_bound": "0.87"}
    assert mct["considerations"]["limitations"] == [{"description": "Trained on 2026 data only."}]
