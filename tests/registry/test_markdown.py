"""User Markdown renders to inert HTML: no scripts, no event handlers, no javascript:/data: URLs, no raw HTML."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from django.utils.safestring import SafeString

from registry.markdown import ALLOWED_TAGS, render_markdown

SAFE_SCHEMES = {"", "http", "https", "mailto"}


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


def elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector.elements


def scheme(url: str) -> str:
    # Browsers drop ASCII tab/newline inside URLs and ignore leading spaces/control characters.
    cleaned = "".join(ch for ch in url if ch not in "\t\n\r").lstrip("\x00\x20\x01\x02\x03\x1f")
    return urlsplit(cleaned).scheme.lower()


def assert_inert(html: str) -> None:
    for tag, attrs in elements(html):
        assert tag in ALLOWED_TAGS, (tag, html)
        for name, value in attrs.items():
            assert not name.lower().startswith("on"), (tag, name, html)
            assert name.lower() not in {"style", "srcdoc", "formaction"}, (tag, name, html)
            if name.lower() in {"href", "src"}:
                assert scheme(value or "") in SAFE_SCHEMES, (tag, name, value, html)


@pytest.mark.parametrize(
    "source",
    [
        "<script>alert(1)</script>",
        "hello <script>alert(1)</script> world",
        "<img src=x onerror=alert(1)>",
        '<a href="javascript:alert(1)">x</a>',
        '<iframe src="https://evil.example"></iframe>',
        "<style>body{display:none}</style>",
        '<div onclick="alert(1)">click</div>',
        "<svg/onload=alert(1)>",
        "[x](javascript:alert(1))",
        "[x](JAVASCRIPT:alert(1))",
        "[x](  javascript:alert(1))",
        "[x](java&#x09;script:alert(1))",
        "[x](&#106;avascript:alert(1))",
        "[x](vbscript:msgbox(1))",
        "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "![x](data:image/png;base64,iVBORw0KGgo=)",
        "![x](javascript:alert(1))",
        "[ref][1]\n\n[1]: javascript:alert(1)",
        "<javascript:alert(1)>",
        '![a](http://x/y.png "t\\" onerror=\\"alert(1))',
        "```html\n<script>alert(1)</script>\n```",
    ],
)
def test_dangerous_input_renders_inert(source):
    html = str(render_markdown(source))
    assert_inert(html)
    assert "<script" not in html.lower()
    assert "<iframe" not in html.lower()
    assert "<svg" not in html.lower()


def test_raw_html_is_shown_as_text_not_markup():
    html = str(render_markdown("<b onmouseover=alert(1)>bold?</b>"))
    assert "&lt;b onmouseover=alert(1)&gt;" in html
    assert [tag for tag, _ in elements(html)] == ["p"]


def test_script_in_code_block_is_escaped_text():
    html = str(render_markdown("```\n<script>alert(1)</script>\n```"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert [tag for tag, _ in elements(html)] == ["pre", "code"]


def test_data_image_loses_its_source():
    html = str(render_markdown("![pixel](data:image/png;base64,iVBORw0KGgo=)"))
    assert [(tag, attrs.get("src")) for tag, attrs in elements(html) if tag == "img"] == [("img", None)]


def test_normal_markdown_survives():
    source = (
        "# Churn\n\n"
        "Predicts **churn** with _care_ and ~~no~~ `code`.\n\n"
        "- one\n- two\n\n"
        "1. first\n2. second\n\n"
        "See [the docs](https://docs.example.com/churn?x=1&y=2 \"Docs\") or [mail](mailto:ml@example.com).\n\n"
        "> quoted\n\n"
        "| a | b |\n|---|--:|\n| 1 | 2 |\n\n"
        "![chart](https://img.example.com/c.png)\n"
    )
    html = str(render_markdown(source))
    assert_inert(html)
    assert "<h1>Churn</h1>" in html
    assert "<strong>churn</strong>" in html
    assert "<em>care</em>" in html
    assert "<s>no</s>" in html or "<del>no</del>" in html
    assert "<code>code</code>" in html
    assert "<li>one</li>" in html and "<li>two</li>" in html
    assert "<ol>" in html and "<blockquote>" in html and "<table>" in html
    links = {attrs["href"]: attrs for tag, attrs in elements(html) if tag == "a"}
    assert set(links) == {"https://docs.example.com/churn?x=1&y=2", "mailto:ml@example.com"}
    assert links["https://docs.example.com/churn?x=1&y=2"]["title"] == "Docs"
    for attrs in links.values():
        assert set(attrs["rel"].split()) >= {"noopener", "noreferrer", "nofollow"}
    assert ("img", {"src": "https://img.example.com/c.png", "alt": "chart"}) in elements(html)


def test_returns_safe_string_and_handles_empty():
    assert isinstance(render_markdown("x"), SafeString)
    assert str(render_markdown("")) == ""
    assert str(render_markdown(None)) == ""
