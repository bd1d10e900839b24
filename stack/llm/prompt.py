"""Which part of a prompt is the document: the planner must narrate it, never the instructions around it.

Servers wrap a document in instructions in many ways: between <document> tags, after a label
("Document:", "## Content"), inside triple quotes or a fence, between "---" or BEGIN/END lines, or
with no marker at all, instructions before and after. Without tags the prompt is cut into blocks
(paragraphs, labels, fences, quotes, rule lines); every sentence weighs its words, negative when it
speaks to the model (the JSON it wants, "each scene", "the following document", "Return only"...),
and the document is the contiguous run of blocks of greatest weight, starting after a document
label when the prompt has one. Pure functions, so every rule is unit tested.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

_TAGGED = re.compile(r"<document>\s*(.*?)\s*</document>", re.DOTALL | re.IGNORECASE)

# Words that name the document in a label ("Document:", "Text to convert:", "## Source material").
_DOCUMENT_NOUNS = frozenset(
    "document documents content contents text article input source material note notes transcript passage "
    "essay paper report file".split()
)
# Labels that open instructions ("Output format:", "## Task").
_INSTRUCTION_LABELS = re.compile(
    r"^(?:(?:your\s+)?task|instructions?|guidelines?|rules|constraints|important|notes? for you|"
    r"(?:output|response|answer|json)\s+format|format|schema|structure|examples?(?:\s+output)?|"
    r"each scene(?:\s+\w+){0,3})$"
)
# Those only prompts use: a block right under one is instructions too ("Guidelines:\n- Be brief"). Not
# "Instructions:" or "Rules:", which documents use as well (a recipe's steps, a game's rules).
_PROMPT_LABELS = re.compile(r"^(?:guidelines|constraints|(?:output|response|answer|json)\s+format|schema|your\s+task)$")
_LABEL_WORDS = 8
_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})\s*([\w+-]*)")
_QUOTES = ('"""', "'''")
# A rule line: punctuation with at most a few framing words ("---", "=== BEGIN DOCUMENT ===", "[END]");
# not "**Notes**", which is bold text.
_RULE = re.compile(r"^\s*[-=*_#~<>\[\]|+]{3,}\s*$|^\s*[-=#~<>\[\]|+]+\s*([a-z ]{0,40}?)\s*[-=#~<>\[\]|+]+\s*$",
                   re.IGNORECASE)
_END_WORDS = frozenset({"end", "stop", "finish"})
_BEGIN_WORDS = frozenset({"begin", "start"})
_PLAIN_FENCE_INFO = frozenset({"", "text", "txt", "markdown", "md", "plain", "plaintext", "document"})

# Sentences that speak to the model rather than tell the document. Lower-case text.
_TASK_WORDS = r"(?:json|array|scenes?|script|narrat\w*|video|slides?|visuals?|output|response|answer|markdown)"
_INSTRUCTION_PATTERNS = [re.compile(pattern) for pattern in (
    r"narration_text|visual_type|visual_prompt|narration text|visual prompt",
    r"\bjson\b.{0,30}\b(?:array|object|format|only|output|response|schema|block)\b",
    r"\b(?:valid|only|return|respond|output|as|in|with)\s+(?:a\s+|an\s+|the\s+)?json\b",
    r"\b(?:the|this)\s+(?:following|above|below|given|provided|attached|uploaded)\s+"
    r"(?:document|text|content|article|input|material|notes?|passage|file)\b",
    r"\b(?:document|text|content|article|input|material)\s+(?:below|above)\b",
    r"^(?:[-*•\d.)\s]*)(?:you are|you're)\b|\byour\s+(?:task|job|goal|role|output|response|answer)\b",
    r"\b(?:each|every|per)\s+scene\b|\bscenes?\s+(?:must|should|will|need)\b|\bvideo script\b"
    r"|\bscript\b.{0,40}\bscenes?\b|\bscenes?\b.{0,40}\b(?:narrat\w*|visuals?|slides?)\b",
    r"^(?:[-*•\d.)\s]*)(?:please\s+)?(?:return|respond|reply|answer|output|format|provide|generate|create|write|"
    r"convert|turn|transform|produce|break|split|divide|make sure|ensure|do not|don't|never|always|avoid|keep|"
    rf"include|use|limit|focus)\b[^\n]{{0,80}}\b{_TASK_WORDS}\b",
    r"\b(?:no|without)\s+(?:other|additional|extra|any)\s+(?:text|commentary|explanations?|prose)\b",
    r"^(?:[-*•\d.)\s]*)please\b",
)]
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|\n")
_WORD = re.compile(r"\w+")


@dataclass
class _Block:
    """A span of the prompt: `start`:`end` in characters; `inner` is what a fence or quotes wrap."""

    kind: str  # "text" | "label" | "rule" | "fence" | "quote"
    start: int
    end: int
    text: str
    inner: tuple[int, int] | None = None
    info: str = ""  # a fence's language


def document_in(prompt: str) -> str:
    """The document `prompt` carries, without the instructions around it (the whole prompt if it is all one)."""
    tagged = _TAGGED.search(prompt)
    if tagged:
        return tagged.group(1)
    blocks = _blocks(prompt)
    weights = _weights(blocks)
    start = _start_after_label(blocks, weights)
    run = _heaviest_run(weights, start)
    if run is None:
        return prompt.strip()
    first, last = run
    end_marker = next((i for i in range(first, last + 1) if _rule_kind(blocks[i]) == "end"), None)
    if end_marker is not None:
        last = end_marker - 1
    while first <= last and blocks[first].kind == "rule":
        first += 1
    while last >= first and blocks[last].kind == "rule":
        last -= 1
    if first > last:
        return prompt.strip()
    if first == last and _is_wrapper(blocks[first]):
        inner_start, inner_end = blocks[first].inner
        return prompt[inner_start:inner_end].strip()
    return prompt[blocks[first].start : blocks[last].end].strip()


def is_instruction(sentence: str) -> bool:
    """Does this sentence (or list item) speak to the model rather than tell the document?"""
    lowered = sentence.lower()
    return any(pattern.search(lowered) for pattern in _INSTRUCTION_PATTERNS)


def _blocks(prompt: str) -> list[_Block]:
    """Paragraphs split also at label lines, rule lines, fences and triple quotes, with their spans."""
    blocks: list[_Block] = []
    lines = prompt.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    paragraph: list[int] = []  # line indexes

    def close_paragraph() -> None:
        if paragraph:
            start, end = offsets[paragraph[0]], offsets[paragraph[-1]] + len(lines[paragraph[-1]].rstrip("\r\n"))
            blocks.append(_Block("text", start, end, prompt[start:end]))
            paragraph.clear()

    index = 0
    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        fence = _FENCE.match(line)
        if fence or stripped.startswith(_QUOTES):
            close_paragraph()
            index = _wrapped(prompt, lines, offsets, index, fence, blocks)
            continue
        if not stripped:
            close_paragraph()
        elif _RULE.match(line):
            close_paragraph()
            blocks.append(_Block("rule", offsets[index], offsets[index] + len(line.rstrip("\r\n")), stripped))
        elif (label := _label(stripped)) is not None:
            close_paragraph()
            head_end = offsets[index] + len(line) - len(line.lstrip()) + label[1]
            blocks.append(_Block("label", offsets[index], head_end, label[0]))
            rest = line[head_end - offsets[index] :]
            if rest.strip():  # "Document: Why bread rises..." starts the document on the label's line
                start = head_end + len(rest) - len(rest.lstrip())
                paragraph_end = _paragraph_end(lines, index)
                end = offsets[paragraph_end] + len(lines[paragraph_end].rstrip("\r\n"))
                blocks.append(_Block("text", start, end, prompt[start:end]))
                index = paragraph_end
        else:
            paragraph.append(index)
        index += 1
    close_paragraph()
    return blocks


def _paragraph_end(lines: list[str], index: int) -> int:
    """The last line of the paragraph that starts at `index` (before a blank line or the end)."""
    while index + 1 < len(lines) and lines[index + 1].strip() and not _FENCE.match(lines[index + 1]):
        index += 1
    return index


def _wrapped(prompt: str, lines: list[str], offsets: list[int], index: int, fence: re.Match | None,
             blocks: list[_Block]) -> int:
    """Add the fence or triple-quoted block opening at line `index`; returns the line after it."""
    line = lines[index]
    if fence:
        marker, closing, depth = fence.group(1), None, 0
        for later in range(index + 1, len(lines)):
            candidate = lines[later].strip()
            if not candidate.startswith(marker[:3]):
                continue
            if candidate.strip(marker[0]):  # "```bash": a code block inside a wrapped document
                depth += 1
            elif depth:
                depth -= 1
            elif candidate.startswith(marker):
                closing = later
                break
        last = closing if closing is not None else len(lines) - 1
        inner = (offsets[index + 1] if index + 1 < len(lines) else offsets[-1],
                 offsets[closing] if closing is not None else offsets[-1])
        blocks.append(_Block("fence", offsets[index], offsets[last] + len(lines[last].rstrip("\r\n")),
                             prompt[inner[0] : inner[1]], inner, fence.group(2).lower()))
        return last + 1
    quotes = line.strip()[:3]
    opened = offsets[index] + line.index(quotes) + 3
    closing_at = prompt.find(quotes, opened)
    if closing_at < 0:  # never closed: the rest of the prompt
        closing_at = len(prompt)
    end = min(closing_at + 3, len(prompt))
    blocks.append(_Block("quote", offsets[index], end, prompt[opened:closing_at], (opened, closing_at)))
    return next((i for i in range(index, len(lines)) if offsets[i + 1] >= end), len(lines) - 1) + 1


def _label(line: str) -> tuple[str, int] | None:
    """A short line naming what follows ("Document:", "## Output format", "**Content:** text").

    Returns the label's words, lower-cased, and where the label ends in the stripped line.
    """
    heading = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
    if heading:
        words = _label_words(heading.group(2))
        if words and (_names_document(words) or _INSTRUCTION_LABELS.match(words)):
            return words, len(line)
        return None
    colon = re.match(r"^[*_\s]*([^:\n]{1,80}?)[*_\s]*:[*_]*(?=\s|$)", line)
    if not colon:
        return None
    words = _label_words(colon.group(1))
    if not words or len(words.split()) > _LABEL_WORDS:
        return None
    rest = line[colon.end() :].strip()
    if rest and not _names_document(words):
        return None  # "Note: bring a coat." is a sentence, not a label
    return words, colon.end()


def _label_words(text: str) -> str:
    return " ".join(re.sub(r"[*_`#\[\]()]", " ", text).lower().split())


def _names_document(words: str) -> bool:
    """A label that introduces the document: it names it and asks for nothing ("Text to convert")."""
    tokens = words.split()
    return bool(_DOCUMENT_NOUNS & set(tokens)) and not _INSTRUCTION_LABELS.match(words) and not is_instruction(words)


def _rule_kind(block: _Block) -> str | None:
    """"begin", "end" or "plain" for a rule line; None for any other block."""
    if block.kind != "rule":
        return None
    words = set(re.findall(r"[a-z]+", block.text.lower()))
    if words & _END_WORDS:
        return "end"
    if words & _BEGIN_WORDS or words & _DOCUMENT_NOUNS:
        return "begin"
    return "plain"


def _is_wrapper(block: _Block) -> bool:
    return block.kind == "quote" or (block.kind == "fence" and block.info in _PLAIN_FENCE_INFO)


def _weights(blocks: list[_Block]) -> list[int]:
    """Each block's words, counted negative where it speaks to the model; labels and rules weigh -1."""
    weights = []
    under_instructions = False
    for block in blocks:
        if block.kind in ("label", "rule"):
            weights.append(-1)
            under_instructions = block.kind == "label" and bool(_PROMPT_LABELS.match(block.text))
            continue
        text = block.text.strip()
        if block.kind == "fence" and (block.info == "json" or text[:1] in "[{"):
            weight = -len(_WORD.findall(text))  # a JSON example of the answer
        elif under_instructions:
            weight = -len(_WORD.findall(text))
        else:
            weight = _text_weight(text)
        weights.append(weight)
        under_instructions = False
    return weights


def _text_weight(text: str) -> int:
    """Words told minus words of instruction; a block mostly of instructions counts wholly against.

    ("- id: the scene number" says nothing to the model alone, but sits among lines that do.)
    """
    told = instructing = 0
    for sentence in _SENTENCE_BREAK.split(text):
        words = len(_WORD.findall(sentence))
        if is_instruction(sentence):
            instructing += words
        else:
            told += words
    return -(told + instructing) if instructing >= told else told - instructing


def _start_after_label(blocks: list[_Block], weights: list[int]) -> int:
    """Where the document must start: after the first document label (or BEGIN line) that only
    instructions precede; 0 when there is none."""
    before = 0
    for index, block in enumerate(blocks):
        names_it = (block.kind == "label" and _names_document(block.text)) or _rule_kind(block) == "begin"
        if names_it and before <= 0:
            return index + 1
        before += weights[index]
    return 0


def _heaviest_run(weights: list[int], start: int) -> tuple[int, int] | None:
    """The contiguous run of blocks of greatest total weight (None if nothing weighs above 0).

    A document label fixes the first block at `start`: then only the end is chosen, and the
    labelled document is kept even if it reads like instructions.
    """
    if start:
        if start >= len(weights):
            return None
        totals = list(itertools.accumulate(weights[start:]))
        return start, start + totals.index(max(totals))
    best: tuple[int, int, int] | None = None  # total, first, last
    total, first = 0, 0
    for index, weight in enumerate(weights):
        if total <= 0:
            total, first = 0, index
        total += weight
        if total > 0 and (best is None or total > best[0]):
            best = (total, first, index)
    return (best[1], best[2]) if best else None
