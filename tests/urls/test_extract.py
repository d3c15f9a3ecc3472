from src.urls.extract import _storable, extract, extract_html
from tests.pages import minimal_pdf

HTML = b"""<html lang="en-GB"><head><title>Guide - Site</title><script>var x=1;</script></head>
<body><header>Site header</header><nav><a href="/a">A</a> <a href="/b">B</a></nav>
<div class="sidebar">Sidebar junk</div>
<main><h1>Guide</h1><p>Intro <b>bold</b> text.</p>
<div class="titlepage"><h2>Install</h2></div><p>Run the installer.</p><pre>  make
  make install</pre>
<ul><li>one</li><li>two <a href="/c">link</a></li></ul>
<table><tr><th>k</th><th>v</th></tr><tr><td>a</td><td>1</td></tr></table>
<h3>Details</h3><p>Fine print.</p></main>
<footer>Copyright</footer><div id="cookie-banner">Accept cookies</div></body></html>"""


def test_html_keeps_title_language_headings_and_drops_boilerplate() -> None:
    doc = extract_html(HTML)
    assert doc.title == "Guide - Site" and doc.language == "en-gb"
    headings = [(b.heading_level, b.text) for b in doc.blocks if b.heading_level]
    assert headings == [(1, "Guide"), (2, "Install"), (3, "Details")]
    for junk in ("Site header", "Sidebar junk", "Copyright", "Accept cookies", "var x"):
        assert junk not in doc.text
    assert "Intro bold text." in doc.text and "k | v" in doc.text and "a | 1" in doc.text
    assert "  make\n  make install" in doc.text  # <pre> keeps its layout
    assert doc.links == ["/a", "/b", "/c"]
    for block in doc.blocks:
        assert doc.text[block.start : block.end] == block.text  # offsets point into the text


def test_postgres_manual_page_keeps_section_headings(tmp_path) -> None:
    html = b"""<html><head><title>11.2. Index Types</title></head><body>
    <div class="navheader"><table><tr><td><a href="indexes-intro.html">Prev</a></td></tr></table></div>
    <div class="sect1"><div class="titlepage"><div><div><h2 class="title">11.2. Index Types</h2></div></div></div>
    <p>PostgreSQL provides several index types.</p>
    <div class="sect2"><div class="titlepage"><div><div><h3 class="title">11.2.1. B-Tree</h3></div></div></div>
    <p>B-trees can handle equality and range queries.</p></div></div>
    <div class="navfooter"><a href="indexes-multicolumn.html">Next</a></div></body></html>"""
    doc = extract_html(html)
    assert [b.text for b in doc.blocks if b.heading_level] == [
        "11.2. Index Types",
        "11.2.1. B-Tree",
    ]
    assert "Prev" not in doc.text and "Next" not in doc.text


def test_markdown_and_plain_text() -> None:
    md = extract(b"# Title\n\nPara one.\n\n## Sub\nline a\nline b\n", "text/markdown")
    assert [(b.heading_level, b.text) for b in md.blocks] == [
        (1, "Title"),
        (0, "Para one."),
        (2, "Sub"),
        (0, "line a\nline b"),
    ]
    plain = extract(b"# not a heading\n\nsecond", "text/plain")
    assert all(b.heading_level == 0 for b in plain.blocks)


def test_pdf_text_is_extracted() -> None:
    doc = extract(minimal_pdf("Hello from a PDF page"), "application/pdf")
    assert "Hello from a PDF page" in doc.text


def test_pdf_metadata_becomes_text_postgresql_can_store() -> None:
    """A PDF's /Title can carry NUL (PostgreSQL text cannot hold it: the chunk COPY and the
    URL update would fail) and lone surrogates (UTF-8 cannot encode them)."""
    doc = extract(minimal_pdf("Body text", info=rb"<< /Title (A\000Title) >>"), "application/pdf")
    assert doc.title == "ATitle" and "Body text" in doc.text
    assert _storable("a\ud800b\x00c") == "a?bc" and _storable(None) is None


def test_broken_pdf_is_an_extraction_error() -> None:
    import pytest

    from src.urls.extract import ExtractionError

    with pytest.raises(ExtractionError) as exc:
        extract(b"%PDF-1.4 garbage", "application/pdf")
    assert exc.value.code == "unparsable"


def test_html_encoding_from_header_declaration_or_utf8_validity() -> None:
    """The HTTP charset first (an unknown label counts as none); then the page's own BOM,
    <meta charset> or XML declaration; a page that declares nothing is UTF-8 when its bytes
    are valid UTF-8 (libxml2 alone reads them as Latin-1), else libxml2's Latin-1."""
    page = "<html><head><title>Café</title></head><body><p>naïve € ok</p></body></html>"
    latin = page.replace(" €", "")  # Latin-1 has no euro sign
    meta = page.replace("<head>", '<head><meta charset="windows-1252">')
    cases = [
        (page.encode(), None, "naïve € ok"),  # declares nothing, valid UTF-8
        (page.encode(), "x-user-defined", "naïve € ok"),  # a label libxml2 does not know
        (page.encode(), "utf-8", "naïve € ok"),
        (latin.encode("latin-1"), "iso-8859-1", "naïve ok"),
        (latin.encode("latin-1"), None, "naïve ok"),  # not valid UTF-8: Latin-1
        (meta.encode("cp1252"), None, "naïve € ok"),
        (page.encode("utf-16"), None, "naïve € ok"),  # BOM
    ]
    for body, charset, text in cases:
        doc = extract_html(body, charset)
        assert (doc.title, doc.text) == ("Café", text), (body[:30], charset)
