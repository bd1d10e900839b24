"""The stand-in LLM's "model": an extractive scene planner.

It does what the server asks the LLM for (a script of 3 to 8 scenes) without inventing a word:
narration is the document's own sentences, cut along its headings and paragraphs. Pure functions
only, so every rule here is unit tested.
"""

from __future__ import annotations

import html
import json
import math
import re
import unicodedata
from dataclasses import dataclass, field

MIN_SCENES = 3
MAX_SCENES = 8
NARRATION_WORD_CAP = 90
# When a document has to be cut by sentences, aim for scenes of about this many words.
SENTENCE_SCENE_WORDS = 60
KEY_POINT_WORDS = 8
MAX_KEY_POINTS = 4
TITLE_WORDS = 6

# Ligatures that PDF text extraction leaves in words ("ﬁle"); spelled out so TTS can read them.
_LIGATURES = str.maketrans(
    {"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"}
)

_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_ATX_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
_SETEXT_UNDERLINE = re.compile(r"^\s{0,3}(=+|-+)\s*$")
_THEMATIC_BREAK = re.compile(r"^\s{0,3}([-*_])(?:\s*\1){2,}\s*$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•▪●◦‣]|\d{1,3}[.)])\s+(.*)$")
_BLOCKQUOTE = re.compile(r"^\s{0,3}(?:>\s?)+")
_TABLE_ROW = re.compile(r"^\s*\|")
_LINK_DEFINITION = re.compile(r"^\s{0,3}\[[^\]]+\]:\s+\S")
_HTML_COMMENT = re.compile(r"^\s*<!--.*-->\s*$")

_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\[[^\]]*\])")
_FOOTNOTE_REF = re.compile(r"\[\^[^\]]+\]")
_AUTOLINK = re.compile(r"<((?:https?|mailto):[^>\s]+)>")
_HTML_TAG = re.compile(r"</?[A-Za-z][^>]*>")
_STRONG = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_EMPHASIS = re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])|(?<!\w)_(?=\S)(.+?)(?<=\S)_(?!\w)")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|~<>])")

_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’»)\]]*\s+")
_TERMINAL = re.compile(r"[.!?…][\"'”’»)\]]*$")
_CLAUSE_BREAK = re.compile(r"[,;:](?=\s)|\s[–—-]\s")
# Words a truncated phrase should not end on.
_DANGLING = frozenset("a an the of to and or but in on at by for with from into that which as is are".split())
_ABBREVIATIONS = frozenset(
    "e.g i.e cf vs mr mrs ms dr prof st jr sr fig figs no nos approx inc ltd co corp al dept est vol"
    .split()
)


@dataclass
class _Unit:
    """The smallest piece of a document a scene is made of: a section, a block or a sentence."""

    heading: str | None  # set only on the unit that opens its section
    sentences: list[str] = field(default_factory=list)
    list_words: int = 0
    prose_words: int = 0
    code_chars: int = 0
    prose_chars: int = 0

    def absorb(self, other: _Unit) -> None:
        self.heading = self.heading or other.heading
        self.sentences += other.sentences
        self.list_words += other.list_words
        self.prose_words += other.prose_words
        self.code_chars += other.code_chars
        self.prose_chars += other.prose_chars


@dataclass
class _Block:
    kind: str  # "paragraph" | "list" | "code"
    lines: list[str]


@dataclass
class _Section:
    heading: str | None
    blocks: list[_Block] = field(default_factory=list)


def plan_scenes(document: str) -> list[dict]:
    """Cut `document` (markdown, plain or PDF-extracted text) into 3-8 narrated scenes.

    Fewer than 3 only when the document has fewer than 3 sentences; none when it has no text.
    """
    sections = _parse(_normalise(document))
    groups = _choose_groups(sections)
    return [_scene(number, group) for number, group in enumerate(groups, start=1)]


def render_reply(scenes: list[dict]) -> str:
    """Answer the way a chat LLM does: a line of prose, then the script in a ```json block."""
    if scenes:
        lead = f"Here is the video script, in {len(scenes)} scene{'s' if len(scenes) != 1 else ''}:"
    else:
        lead = "The document holds no text to narrate, so the script is empty:"
    return f"{lead}\n\n```json\n{json.dumps(scenes, indent=2, ensure_ascii=False)}\n```\n"


def strip_markdown(text: str) -> str:
    """Inline markdown to plain text: links become their text, emphasis and code marks go."""
    pieces = []
    last = 0
    for span in _CODE_SPAN.finditer(text):  # code spans keep their content verbatim
        pieces.append(_strip_inline(text[last : span.start()]))
        pieces.append(span.group(2).strip())
        last = span.end()
    pieces.append(_strip_inline(text[last:]))
    return " ".join("".join(pieces).split())


def split_sentences(text: str) -> list[str]:
    """Sentences of one paragraph of plain text, without breaking at "e.g." or initials."""
    sentences = []
    start = 0
    for end in _SENTENCE_END.finditer(text):
        following = text[end.end() : end.end() + 1]
        if not (following.isupper() or following.isdigit() or following in "\"'“‘«(["):
            continue
        if _is_abbreviation(text[start : end.start() + 1]):
            continue
        sentences.append(text[start : end.end()].strip())
        start = end.end()
    sentences.append(text[start:].strip())
    return [sentence for sentence in sentences if _has_words(sentence)]


def _is_abbreviation(before_stop: str) -> bool:
    words = before_stop.split()
    if not words:
        return False
    word = words[-1].rstrip(".").lstrip("(\"'“‘")
    if word.lower() in _ABBREVIATIONS:
        return True
    if len(word) == 1 and word.isalpha() and word.isupper():  # an initial: "J. Smith"
        return True
    return re.fullmatch(r"(?:[A-Za-z]\.)+[A-Za-z]", word) is not None  # "U.S.", "e.g."


def _strip_inline(text: str) -> str:
    text = _IMAGE.sub("", text)
    text = _LINK.sub(r"\1", text)
    text = _FOOTNOTE_REF.sub("", text)
    text = _AUTOLINK.sub(r"\1", text)
    text = _HTML_TAG.sub("", text)
    for pattern in (_STRONG, _STRIKE):
        text = pattern.sub(lambda match: match.group(match.lastindex), text)
    text = _EMPHASIS.sub(lambda match: match.group(1) or match.group(2), text)
    text = _ESCAPE.sub(r"\1", text)
    return html.unescape(text)


def _normalise(document: str) -> str:
    text = unicodedata.normalize("NFC", document).translate(_LIGATURES)
    return text.replace("\u00ad", "").replace("\ufeff", "")  # soft hyphens and BOMs from PDFs


def _parse(text: str) -> list[_Section]:
    """Markdown block structure: sections under headings, holding paragraphs, lists and code."""
    # splitlines also ends lines at \r\n, \r and the form feeds between PDF pages
    lines = _without_front_matter(text.splitlines())
    sections = [_Section(heading=None)]
    block: _Block | None = None
    fence: str | None = None

    def open_block(kind: str) -> _Block:
        new = _Block(kind, [])
        sections[-1].blocks.append(new)
        return new

    after_blank = False
    for line in lines:
        if fence is not None:
            if line.strip().startswith(fence) and not line.strip().strip(fence[0]):
                fence, block = None, None
            else:
                block.lines.append(line)
            continue
        if opening := _FENCE.match(line):
            fence, block = opening.group(1), open_block("code")
            continue
        line = _BLOCKQUOTE.sub("", line)
        if not line.strip():
            after_blank = True
            continue
        # a blank line ends a paragraph; a list goes on if the next line is an item or indented
        if after_blank and block is not None and (block.kind == "paragraph" or not line[:1].isspace()):
            block = None
        after_blank = False
        if heading := _ATX_HEADING.match(line):
            sections.append(_Section(heading=strip_markdown(heading.group(2)) or None))
            block = None
        elif (
            _SETEXT_UNDERLINE.match(line)
            and block is not None
            and block.kind == "paragraph"
            and len(block.lines) == 1
        ):
            sections[-1].blocks.pop()
            sections.append(_Section(heading=strip_markdown(block.lines[0]) or None))
            block = None
        elif _THEMATIC_BREAK.match(line) or _SETEXT_UNDERLINE.match(line):
            block = None
        elif _TABLE_ROW.match(line) or _LINK_DEFINITION.match(line) or _HTML_COMMENT.match(line):
            block = None  # tables, link targets and comments carry nothing to narrate
        elif item := _LIST_ITEM.match(line):
            if block is None or block.kind != "list":
                block = open_block("list")
            block.lines.append(item.group(1))
        elif block is not None:
            block.lines[-1] = _join_broken_line(block.lines[-1], line.strip())
        else:
            block = open_block("paragraph")
            block.lines.append(line.strip())
    return [section for section in sections if section.heading or section.blocks]


def _without_front_matter(lines: list[str]) -> list[str]:
    if lines and lines[0].strip() == "---":
        for index, line in enumerate(lines[1:], start=1):
            if line.strip() in ("---", "..."):
                return lines[index + 1 :]
    return lines


def _join_broken_line(head: str, tail: str) -> str:
    """Join a line broken inside a sentence, as PDF extraction leaves them (and "infor-\\nmation")."""
    if re.search(r"\w-$", head) and tail[:1].islower():
        return head[:-1] + tail
    return f"{head} {tail}"


def _block_unit(block: _Block, heading: str | None) -> _Unit:
    unit = _Unit(heading=heading)
    if block.kind == "code":
        unit.code_chars = sum(len(line.strip()) for line in block.lines)
        return unit
    texts = [strip_markdown(line) for line in block.lines]
    if block.kind == "list":
        unit.sentences = [_as_sentence(text) for text in texts if _has_words(text)]
        unit.list_words = sum(len(sentence.split()) for sentence in unit.sentences)
    else:
        unit.sentences = [_as_sentence(sentence) for text in texts for sentence in split_sentences(text)]
        unit.prose_words = sum(len(sentence.split()) for sentence in unit.sentences)
    unit.prose_chars = sum(len(sentence) for sentence in unit.sentences)
    return unit


def _section_units(section: _Section) -> list[_Unit]:
    """Fresh units for the blocks of one section; the heading goes with the first."""
    if not section.blocks:
        return [_Unit(heading=section.heading)]
    return [_block_unit(block, section.heading if index == 0 else None) for index, block in enumerate(section.blocks)]


def _sentence_units(unit: _Unit) -> list[_Unit]:
    """One unit per sentence; the code and heading of the parent stay with its first sentence."""
    units = []
    for index, sentence in enumerate(unit.sentences):
        words = len(sentence.split())
        units.append(
            _Unit(
                heading=unit.heading if index == 0 else None,
                sentences=[sentence],
                list_words=words if unit.list_words else 0,
                prose_words=words if unit.prose_words else 0,
                code_chars=unit.code_chars if index == 0 else 0,
                prose_chars=len(sentence),
            )
        )
    return units


def _merged(units: list[_Unit]) -> _Unit:
    whole = _Unit(heading=None)
    for unit in units:
        whole.absorb(unit)
    return whole


def _narrated(units: list[_Unit]) -> list[_Unit]:
    """Fold units with nothing to say (a bare heading, a lone code block) into a neighbour.

    They go with the unit after them when it continues their section, else with the one before.
    """
    kept: list[_Unit] = []
    pending = _Unit(heading=None)
    for unit in units:
        if not unit.sentences:
            pending.absorb(unit)
            continue
        if kept and unit.heading is not None:
            kept[-1].absorb(pending)
        else:
            unit.absorb(pending)
        pending = _Unit(heading=None)
        kept.append(unit)
    if kept:
        kept[-1].absorb(pending)
    return kept


def _choose_groups(sections: list[_Section]) -> list[list[_Unit]]:
    """Cut along sections, else paragraphs, else sentences: the first that gives 3 units."""
    by_section = _narrated([_merged(_section_units(section)) for section in sections])
    if len(by_section) >= MIN_SCENES:
        return _partition(by_section, MAX_SCENES)
    by_block = _narrated([unit for section in sections for unit in _section_units(section)])
    if len(by_block) >= MIN_SCENES:
        return _partition(by_block, MAX_SCENES)
    by_sentence = [sentence for unit in by_block for sentence in _sentence_units(unit)]
    words = sum(len(unit.sentences[0].split()) for unit in by_sentence)
    target = min(MAX_SCENES, max(MIN_SCENES, math.ceil(words / SENTENCE_SCENE_WORDS)))
    return _partition(by_sentence, target)


def _partition(units: list[_Unit], groups: int) -> list[list[_Unit]]:
    """Split `units` into at most `groups` neighbouring runs of about equal word counts."""
    if len(units) <= groups:
        return [[unit] for unit in units]
    cumulative = [0]
    for unit in units:
        cumulative.append(cumulative[-1] + sum(len(sentence.split()) for sentence in unit.sentences))
    runs, start = [], 0
    for index in range(groups - 1):
        target = cumulative[-1] * (index + 1) / groups
        last_end = len(units) - (groups - 1 - index)  # leave one unit for every later run
        end = start + 1
        while end < last_end and abs(cumulative[end + 1] - target) <= abs(cumulative[end] - target):
            end += 1
        runs.append(units[start:end])
        start = end
    runs.append(units[start:])
    return runs


def _scene(number: int, group: list[_Unit]) -> dict:
    chosen = _leading_sentences(group)
    narration = " ".join(sentence for _, sentence in sorted(chosen))
    heading = next((unit.heading for unit in group if unit.heading), None)
    title = heading or _first_words(chosen[0][1], TITLE_WORDS)
    points = _key_points([sentence for _, sentence in chosen])
    bullet_lines = "".join(f"\n- {point}" for point in points)
    return {
        "id": number,
        "narration_text": narration,
        "visual_type": _visual_type(group),
        "visual_prompt": f"Title: {title}\nKey Points:{bullet_lines}",
    }


def _leading_sentences(group: list[_Unit]) -> list[tuple[tuple[int, int], str]]:
    """The leading sentences of every unit, taken in turns, within the narration word cap.

    Returns ((unit index, sentence index), sentence) in the order chosen, so the first
    entries are the units' opening sentences.
    """
    chosen: list[tuple[tuple[int, int], str]] = []
    words = 0
    open_units = set(range(len(group)))
    rank = 0
    while open_units:
        for index in sorted(open_units):
            sentences = group[index].sentences
            if rank < len(sentences) and not chosen:
                sentence = _capped(sentences[rank])  # the opening sentence is always told
            elif rank < len(sentences) and words + len(sentences[rank].split()) <= NARRATION_WORD_CAP:
                sentence = sentences[rank]
            else:
                open_units.discard(index)  # only a unit's leading sentences, never one past a gap
                continue
            chosen.append(((index, rank), sentence))
            words += len(sentence.split())
        rank += 1
    return chosen


def _capped(sentence: str) -> str:
    """A sentence longer than the narration cap (unpunctuated PDF text) cut at a clause."""
    words = sentence.split()
    if len(words) <= NARRATION_WORD_CAP:
        return _as_sentence(sentence)
    head = " ".join(words[:NARRATION_WORD_CAP])
    breaks = [match.start() for match in re.finditer(r"[,;:]", head)]
    if breaks and len(head[: breaks[-1]].split()) >= NARRATION_WORD_CAP // 3:
        head = head[: breaks[-1]]
    return _as_sentence(head)


def _as_sentence(text: str) -> str:
    """End with a full stop so the voice pauses (list items and headings-like lines lack one)."""
    text = text.strip()
    if _TERMINAL.search(text):
        return text
    return text.rstrip(",;:-–— ") + "."


def _first_words(text: str, count: int) -> str:
    """The opening words of `text`, not ending on a dangling "the" or "of"."""
    words = text.split()[:count]
    while len(words) > 1 and words[-1].lower().strip(",;:") in _DANGLING:
        words.pop()
    return " ".join(words).rstrip(".,;:!?…")


def _key_points(sentences: list[str]) -> list[str]:
    """Up to 4 short phrases: the first clause of each sentence; later clauses only to reach 2."""
    clauses = [_clauses(sentence) for sentence in sentences]
    firsts = [parts[0] for parts in clauses]
    laters = [part for parts in clauses for part in parts[1:]]
    points: list[str] = []
    for clause in firsts + (laters if len(firsts) < 2 else []):
        point = _first_words(clause, KEY_POINT_WORDS)
        if point.lower() not in {seen.lower() for seen in points}:
            points.append(point)
    return points[:MAX_KEY_POINTS]


def _clauses(sentence: str) -> list[str]:
    """A sentence's clauses; a lead-in such as "Next," stays with the clause it introduces."""
    cuts = [match.start() for match in _CLAUSE_BREAK.finditer(sentence)] + [len(sentence)]
    first_end = next(cut for cut in cuts if len(sentence[:cut].split()) >= 3 or cut == len(sentence))
    later = [part for part in _CLAUSE_BREAK.split(sentence[first_end:]) if _has_words(part)]
    return [sentence[:first_end], *later]


def _has_words(text: str) -> bool:
    return any(char.isalnum() for char in text)


def _visual_type(group: list[_Unit]) -> str:
    code = sum(unit.code_chars for unit in group)
    prose = sum(unit.prose_chars for unit in group)
    if code > prose:
        return "code"
    listed = sum(unit.list_words for unit in group)
    if listed > sum(unit.prose_words for unit in group):
        return "diagram"
    return "slide"
