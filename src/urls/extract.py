"""Text extraction: main content of HTML with title, language and headings kept; plain text
and Markdown as they are; PDF text through pypdf (pure Python).

HTML goes through lxml with boilerplate removal (navigation, headers, footers, sidebars,
scripts, forms) and a walk that keeps headings as structure. trafilatura was measured
first: on the PostgreSQL manual it drops every section heading (they sit in
`div.titlepage`), which the chunker needs for breadcrumbs.
"""

import codecs
import io
import re
from dataclasses import dataclass, field

import lxml.html
from lxml import etree

HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
DROP = {
    "script",
    "style",
    "noscript",
    "template",
    "svg",
    "iframe",
    "form",
    "button",
    "nav",
    "header",
    "footer",
    "aside",
    "select",
    "input",
    "textarea",
    "object",
    "embed",
    "canvas",
    "video",
    "audio",
    "map",
    "head",
}
INLINE = {
    "a",
    "span",
    "code",
    "em",
    "strong",
    "b",
    "i",
    "sub",
    "sup",
    "small",
    "abbr",
    "acronym",
    "tt",
    "var",
    "kbd",
    "samp",
    "q",
    "cite",
    "mark",
    "u",
    "s",
    "del",
    "ins",
    "font",
    "big",
    "time",
    "data",
    "label",
    "img",
    "wbr",
    "bdi",
    "bdo",
    "dfn",
}
BOILERPLATE = re.compile(
    r"(?:^|[\s_-])(?:nav|navbar|navheader|navfooter|menu|footer|header|sidebar|breadcrumbs?|"
    r"cookies?|banner|skip|share|social|advert|ads|popup|modal|toc)(?:$|[\s_-])",
    re.I,
)
ROLES = {"navigation", "banner", "contentinfo", "complementary", "search"}
WS = re.compile(r"\s+")


@dataclass
class Block:
    text: str
    heading_level: int = 0  # 0: body text
    start: int = 0  # character offsets in Extracted.text
    end: int = 0


@dataclass
class Extracted:
    text: str
    blocks: list[Block] = field(default_factory=list)
    title: str | None = None
    language: str | None = None
    links: list[str] = field(default_factory=list)  # raw hrefs (HTML), for crawls
    base_url: str | None = None  # <base href>, if the page sets one


class ExtractionError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _assemble(blocks: list[Block], title: str | None, language: str | None) -> Extracted:
    parts: list[str] = []
    offset = 0
    kept: list[Block] = []
    for block in blocks:
        if not block.text:
            continue
        rendered = (
            ("#" * block.heading_level + " " + block.text) if block.heading_level else block.text
        )
        if parts:
            offset += 2
        start = offset + (len(rendered) - len(block.text))
        parts.append(rendered)
        offset += len(rendered)
        kept.append(Block(block.text, block.heading_level, start, offset))
    return Extracted(text="\n\n".join(parts), blocks=kept, title=title, language=language)


# --- HTML ----------------------------------------------------------------------------------


def _is_boilerplate(el: etree._Element) -> bool:
    if el.tag in DROP:
        return True
    if (el.get("role") or "").lower() in ROLES or el.get("aria-hidden") == "true":
        return True
    if el.get("hidden") is not None:
        return True
    marker = f"{el.get('class') or ''} {el.get('id') or ''}"
    return bool(marker.strip()) and bool(BOILERPLATE.search(marker))


MAIN_XPATH = (
    "//main | //article | //*[@role='main'] | //*[@id='content'] | //*[@id='main']"
    " | //*[@id='docContent']"
)


def _main_root(doc: etree._Element) -> etree._Element:
    """The main content element (one document pass), else <body>."""
    found = doc.xpath(MAIN_XPATH)
    if found:
        rank = {"main": 0, "article": 1}
        return min(found, key=lambda el: rank.get(el.tag, 2))
    body = doc.find(".//body")
    return body if body is not None else doc


class _Walker:
    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.buffer: list[str] = []

    def flush(self, pre: bool = False) -> None:
        text = "".join(self.buffer)
        self.buffer = []
        text = text.strip("\n").rstrip() if pre else WS.sub(" ", text).strip()
        if text:
            self.blocks.append(Block(text))

    def inline_text(self, el: etree._Element) -> str:
        parts = [el.text or ""]
        for child in el:
            if isinstance(child.tag, str) and not _is_boilerplate(child):
                parts.append("\n" if child.tag == "br" else self.inline_text(child))
            parts.append(child.tail or "")
        return "".join(parts)

    def walk(self, el: etree._Element) -> None:
        tag = el.tag if isinstance(el.tag, str) else ""
        if not tag or _is_boilerplate(el):
            return
        if tag in HEADINGS:
            self.flush()
            text = WS.sub(" ", self.inline_text(el)).strip()
            if text:
                self.blocks.append(Block(text, HEADINGS[tag]))
            return
        if tag == "pre":
            self.flush()
            self.buffer.append(self.inline_text(el))
            self.flush(pre=True)
            return
        if tag == "tr":
            self.flush()
            cells = [WS.sub(" ", self.inline_text(c)).strip() for c in el if c.tag in ("td", "th")]
            self.buffer.append(" | ".join(c for c in cells if c))
            self.flush()
            return
        self.flush()
        self.buffer.append(el.text or "")
        for child in el:
            child_tag = child.tag if isinstance(child.tag, str) else ""
            if child_tag in INLINE or child_tag == "br":
                if not _is_boilerplate(child):
                    self.buffer.append("\n" if child_tag == "br" else self.inline_text(child))
            elif child_tag:
                self.walk(child)
            self.buffer.append(child.tail or "")
        self.flush()


_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_DECLARED = re.compile(rb"<meta[^>]*charset|<\?xml[^>]*encoding", re.I)


def _html_parser(body: bytes, charset: str | None) -> lxml.html.HTMLParser | None:
    """The parser for the page's encoding: the HTTP charset when libxml2 knows it (an
    unknown label counts as none, as in browsers). A page that declares none (no BOM, no
    <meta charset> or XML declaration near the top) but is valid UTF-8 is read as UTF-8:
    libxml2 would read it as Latin-1 (`Café` as `CafÃ©`). Otherwise libxml2 decides."""
    if charset:
        try:
            return lxml.html.HTMLParser(encoding=charset)
        except LookupError:
            pass
    head = body[:4096]
    if body.isascii() or head.startswith(_BOMS) or _DECLARED.search(head):
        return None
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return lxml.html.HTMLParser(encoding="utf-8")


def extract_html(body: bytes, charset: str | None = None) -> Extracted:
    try:
        doc = lxml.html.document_fromstring(body, parser=_html_parser(body, charset))
    except (etree.ParserError, ValueError, LookupError) as exc:
        raise ExtractionError("unparsable", f"the HTML cannot be parsed: {exc}") from exc
    title_el = doc.find(".//title")
    title = WS.sub(" ", title_el.text_content()).strip() if title_el is not None else None
    language = (doc.get("lang") or doc.get("xml:lang") or "").strip() or None
    if language is None:
        meta = doc.xpath(
            "//meta[translate(@http-equiv,'CONTENT-LANGUAGE','content-language')"
            "='content-language']/@content"
        )
        language = meta[0].strip() if meta else None
    links = [href.strip() for href in doc.xpath("//a/@href") if href.strip()]
    base = doc.xpath("//base/@href")
    walker = _Walker()
    walker.walk(_main_root(doc))
    walker.flush()
    if not title:
        title = next((b.text for b in walker.blocks if b.heading_level == 1), None)
    result = _assemble(
        walker.blocks, title[:500] if title else None, language[:32].lower() if language else None
    )
    result.links = links
    result.base_url = base[0].strip() if base else None
    return result


# --- plain text, Markdown, PDF ---------------------------------------------------------------

MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def _decode(body: bytes, charset: str | None) -> str:
    try:
        return body.decode(charset or "utf-8")
    except (UnicodeDecodeError, LookupError):
        return body.decode("utf-8", "replace")


def extract_text(body: bytes, charset: str | None = None, markdown: bool = False) -> Extracted:
    text = _decode(body, charset).replace("\r\n", "\n").replace("\x00", "")
    blocks: list[Block] = []
    for para in re.split(r"\n\s*\n", text):
        lines = para.strip("\n").split("\n")
        buffer: list[str] = []
        for line in lines:
            match = MD_HEADING.match(line.strip()) if markdown else None
            if match:
                if buffer:
                    blocks.append(Block("\n".join(buffer).strip()))
                    buffer = []
                blocks.append(Block(match.group(2), len(match.group(1))))
            else:
                buffer.append(line)
        if buffer and "\n".join(buffer).strip():
            blocks.append(Block("\n".join(buffer).strip()))
    title = next((b.text for b in blocks if b.heading_level == 1), None)
    return _assemble(blocks, title, None)


def extract_pdf(body: bytes) -> Extracted:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(body))
        pages = [page.extract_text() or "" for page in reader.pages]
        meta_title = (reader.metadata.title if reader.metadata else None) or None
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise ExtractionError("unparsable", f"the PDF cannot be read: {exc}") from exc
    # pypdf's strings can hold what no UTF-8 text may (lone surrogates from a broken
    # ToUnicode map): replaced here, like NUL in extract_text.
    extracted = extract_text("\n\n".join(pages).encode("utf-8", "replace"), "utf-8")
    extracted.title = meta_title or extracted.title
    return extracted


def _storable(value: str | None) -> str | None:
    """A title PostgreSQL can store: no NUL, no lone surrogate (a PDF's /Title can carry
    both; lxml already replaces them in HTML)."""
    if not value:
        return value
    value = value.replace("\x00", "")
    return value if value.isascii() else value.encode("utf-8", "replace").decode("utf-8")


def extract(body: bytes, content_type: str, charset: str | None = None) -> Extracted:
    """Dispatch on the media type the fetcher accepted."""
    if content_type in ("text/html", "application/xhtml+xml"):
        result = extract_html(body, charset)
    elif content_type == "application/pdf":
        result = extract_pdf(body)
    elif content_type in ("text/markdown", "text/x-markdown"):
        result = extract_text(body, charset, markdown=True)
    else:
        result = extract_text(body, charset)
    result.text = result.text.replace("\x00", "")
    result.title = _storable(result.title)
    return result
