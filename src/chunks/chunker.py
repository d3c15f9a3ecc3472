"""Token-aware chunking: split on headings, then paragraphs, then sentences (then words).

Each chunk keeps its ordinal, heading breadcrumb, character offsets into the extracted
text and token count, and its text starts with the page title / breadcrumb context.

Tokens are counted offline by `count_tokens`: an approximation of a BPE tokenizer
(words up to 6 characters count 1, longer words one more per 6 characters, each
punctuation mark 1), within ~15% of cl100k on English prose; no encodings are downloaded.
"""

import hashlib
import re
from dataclasses import dataclass

from src.urls.extract import Extracted

SENTENCE = re.compile(r"(?<=[.!?;:])\s+(?=\S)")
CONTEXT_SEPARATOR = " › "


# One token per started run of 6 word characters, one per punctuation mark: a word of n
# characters costs 1 + (n - 1) // 6.
TOKEN = re.compile(r"\w{1,6}|[^\w\s]", re.UNICODE)


def count_tokens(text: str) -> int:
    return len(TOKEN.findall(text))


def _word_cost(word: str) -> int:
    """count_tokens for one whitespace-free word, with a fast path for plain words."""
    if word.isalnum():
        return 1 + (len(word) - 1) // 6
    return count_tokens(word)


@dataclass
class ChunkDraft:
    ordinal: int
    text: str
    headings: list[str]
    char_start: int
    char_end: int
    token_count: int
    content_hash: str


@dataclass
class _Unit:
    text: str
    start: int
    end: int
    tokens: int
    joiner: str  # what goes before it when it follows another unit


def _split_long(text: str, start: int, budget: int) -> list[_Unit]:
    """Sentences, and word windows for sentences longer than the budget."""
    units: list[_Unit] = []
    pos = 0
    pieces = SENTENCE.split(text)
    for i, sentence in enumerate(pieces):
        offset = text.find(sentence, pos)
        pos = offset + len(sentence)
        tokens = count_tokens(sentence)
        joiner = "\n\n" if i == 0 else " "
        if tokens <= budget:
            units.append(_Unit(sentence, start + offset, start + pos, tokens, joiner))
            continue
        words = list(re.finditer(r"\S+", sentence))
        window: list[re.Match] = []
        window_tokens = 0
        for word in words:
            wt = _word_cost(word.group())
            if window and window_tokens + wt > budget:
                units.append(_window_unit(window, sentence, start + offset, window_tokens, joiner))
                joiner, window, window_tokens = " ", [], 0
            window.append(word)
            window_tokens += wt
        if window:
            units.append(_window_unit(window, sentence, start + offset, window_tokens, joiner))
        joiner = " "
    return units


def _window_unit(
    window: list[re.Match], sentence: str, base: int, tokens: int, joiner: str
) -> _Unit:
    s, e = window[0].start(), window[-1].end()
    return _Unit(sentence[s:e], base + s, base + e, tokens, joiner)


def _sections(doc: Extracted) -> list[tuple[list[str], list[_Unit]]]:
    """(breadcrumb, paragraphs) for each run of body text under the same headings."""
    stack: list[tuple[int, str]] = []
    sections: list[tuple[list[str], list[_Unit]]] = []
    current: list[_Unit] = []
    crumbs: list[str] = []
    for block in doc.blocks:
        if block.heading_level:
            if current:
                sections.append((crumbs, current))
                current = []
            while stack and stack[-1][0] >= block.heading_level:
                stack.pop()
            stack.append((block.heading_level, block.text))
            crumbs = [text for _, text in stack]
            continue
        current.append(_Unit(block.text, block.start, block.end, count_tokens(block.text), "\n\n"))
    if current:
        sections.append((crumbs, current))
    return sections


def _context(title: str | None, crumbs: list[str]) -> str:
    parts = [p for p in ([title] if title else []) + crumbs if p]
    deduped = [p for i, p in enumerate(parts) if i == 0 or p != parts[i - 1]]
    return CONTEXT_SEPARATOR.join(deduped)


def chunk_document(doc: Extracted, *, chunk_size: int, chunk_overlap: int) -> list[ChunkDraft]:
    drafts: list[ChunkDraft] = []
    for crumbs, paragraphs in _sections(doc):
        context = _context(doc.title, crumbs)
        header_tokens = count_tokens(context) + 2 if context else 0
        budget = max(16, chunk_size - header_tokens)
        units: list[_Unit] = []
        for para in paragraphs:
            units.extend(
                [para] if para.tokens <= budget else _split_long(para.text, para.start, budget)
            )
        for group in _pack(units, budget, min(chunk_overlap, budget // 2)):
            body = group[0].text + "".join(u.joiner + u.text for u in group[1:])
            text = f"{context}\n\n{body}" if context else body
            drafts.append(
                ChunkDraft(
                    ordinal=len(drafts),
                    text=text,
                    headings=list(crumbs),
                    char_start=group[0].start,
                    char_end=group[-1].end,
                    token_count=header_tokens + sum(u.tokens for u in group),
                    content_hash=hashlib.sha256(text.encode()).hexdigest(),
                )
            )
    return drafts


def _tail(unit: _Unit, overlap: int) -> _Unit | None:
    """The last words of `unit` worth at most `overlap` tokens."""
    words = list(re.finditer(r"\S+", unit.text))
    taken, tokens = 0, 0
    for word in reversed(words):
        cost = _word_cost(word.group())
        if tokens + cost > overlap:
            break
        taken, tokens = taken + 1, tokens + cost
    if taken == 0 or taken == len(words):
        return None
    start = words[-taken].start()
    return _Unit(unit.text[start:], unit.start + start, unit.end, tokens, "\n\n")


def _pack(units: list[_Unit], budget: int, overlap: int) -> list[list[_Unit]]:
    """Greedy packing up to `budget` tokens; each new chunk repeats up to `overlap` tokens
    from the end of the previous one (whole units, or the tail of the last one)."""
    groups: list[list[_Unit]] = []
    current: list[_Unit] = []
    tokens = 0
    fresh = 0  # units in `current` not carried over as overlap
    for unit in units:
        if current and tokens + unit.tokens > budget and fresh:
            groups.append(current)
            carried: list[_Unit] = []
            carried_tokens = 0
            for prev in reversed(current):
                cost = carried_tokens + prev.tokens
                if cost > overlap or cost + unit.tokens > budget:
                    break
                carried.insert(0, prev)
                carried_tokens += prev.tokens
            if not carried and overlap:
                tail = _tail(current[-1], min(overlap, budget - unit.tokens))
                if tail is not None:
                    carried, carried_tokens = [tail], tail.tokens
            current, tokens, fresh = carried, carried_tokens, 0
        current.append(unit)
        tokens += unit.tokens
        fresh += 1
    if current and fresh:
        groups.append(current)
    return groups
