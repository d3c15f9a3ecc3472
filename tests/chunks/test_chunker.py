import itertools

from src.chunks.chunker import chunk_document, count_tokens
from src.urls.extract import extract_html, extract_text


def long_paragraph(n: int, word: str = "token") -> str:
    return " ".join(f"{word}{i}." for i in range(n))


def test_token_count_is_offline_and_reasonable() -> None:
    assert count_tokens("") == 0
    assert count_tokens("Hello, world!") == 4
    assert count_tokens("internationalization") == 4  # long words cost more
    assert 80 <= count_tokens("The quick brown fox jumps over the lazy dog. " * 10) <= 120


def test_chunks_split_on_headings_and_carry_breadcrumbs() -> None:
    html = (
        "<html><head><title>Manual</title></head><body><main><h1>Indexes</h1><p>About indexes.</p>"
        "<h2>B-Tree</h2><p>Balanced trees.</p><h2>Hash</h2><p>Hash tables.</p></main></body></html>"
    )
    chunks = chunk_document(extract_html(html.encode()), chunk_size=200, chunk_overlap=20)
    assert [c.headings for c in chunks] == [["Indexes"], ["Indexes", "B-Tree"], ["Indexes", "Hash"]]
    assert chunks[1].text.startswith("Manual › Indexes › B-Tree\n\n")
    assert [c.ordinal for c in chunks] == [0, 1, 2]
    assert len({c.content_hash for c in chunks}) == 3


def test_chunks_respect_the_token_budget_with_overlap() -> None:
    doc = extract_text(("\n\n".join(long_paragraph(40, f"p{i}w") for i in range(12))).encode())
    chunks = chunk_document(doc, chunk_size=128, chunk_overlap=30)
    assert len(chunks) > 3
    assert all(c.token_count <= 128 for c in chunks)
    for prev, nxt in itertools.pairwise(chunks):
        assert nxt.char_start < prev.char_end  # overlap: the next chunk starts inside the previous
    for c in chunks:
        body = c.text
        assert doc.text[c.char_start : c.char_end].split()[0] in body


def test_giant_sentence_is_split_by_words() -> None:
    doc = extract_text(" ".join(["word"] * 2000).encode())
    chunks = chunk_document(doc, chunk_size=100, chunk_overlap=10)
    assert len(chunks) >= 20 and all(c.token_count <= 100 for c in chunks)


def test_offsets_point_into_the_extracted_text() -> None:
    doc = extract_text(b"First para here.\n\nSecond para there.")
    (chunk,) = chunk_document(doc, chunk_size=100, chunk_overlap=10)
    assert doc.text[chunk.char_start : chunk.char_end] == "First para here.\n\nSecond para there."
