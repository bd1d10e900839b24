"""The scene script: what the LLM is asked, and a defensive reading of what it answers."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

MAX_DOCUMENT_CHARS = 24_000
MAX_SCENES = 12
VISUAL_TYPES = ("slide", "diagram", "chart", "formula", "code")

SYSTEM_PROMPT = (
    "You turn documents into scripts for short narrated explainer videos. "
    "You answer with JSON only, no commentary."
)

USER_PROMPT = """Write the script of a short explainer video about the document below.
Answer with a JSON array of 3 to 8 scenes inside a ```json fenced block. Each scene is an object:
{{"id": 1, "narration_text": "what the narrator says, two to four plain sentences", "visual_type": "slide",
  "visual_prompt": "Title: a short title\\nKey Points:\\n- first point\\n- second point"}}
visual_type is one of {types}. Follow the order of the document and stay faithful to it.

<document>
{document}
</document>"""


class ScriptError(ValueError):
    """The LLM's reply holds no usable script."""


@dataclass(frozen=True)
class Scene:
    id: int
    narration_text: str
    visual_type: str
    visual_prompt: str


def chat_messages(document: str) -> list[dict[str, str]]:
    """System and user messages asking for a script of `document` (truncated to a sane size)."""
    body = document[:MAX_DOCUMENT_CHARS]
    # The markers delimit the document; one inside it would end it early.
    body = re.sub(r"</?document>", "", body, flags=re.IGNORECASE)
    user = USER_PROMPT.format(types=", ".join(VISUAL_TYPES), document=body)
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_-]*)[^\n]*\n(.*?)(```|$)", re.DOTALL)
_TRAILING_COMMA = re.compile(r",(\s*[\]}])")
_SMART_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2018": "'", "\u2019": "'"})


def _without_thinking(reply: str) -> str:
    # Some models print only the closing tag: what precedes it is thinking too.
    if "</think>" in reply.lower() and "<think>" not in reply.lower():
        reply = reply[reply.lower().rindex("</think>") + len("</think>"):]
    return _THINK.sub("", reply)


def _candidate_texts(reply: str) -> list[str]:
    """Where the script may be, most likely first: ```json blocks, other fenced blocks, the whole reply."""
    fences = _FENCE.findall(reply)
    json_blocks = [body for lang, body, _ in fences if lang.lower() == "json"]
    other_blocks = [body for lang, body, _ in fences if lang.lower() != "json"]
    return [*json_blocks, *other_blocks, reply]


def _json_values(text: str):
    """Every JSON array or object that starts somewhere in `text`, leftmost (outermost) first.

    Tried as written, then without trailing commas, then also with smart quotes straightened:
    the repairs are only applied when the text as written does not parse.
    """
    decoder = json.JSONDecoder()
    repaired = _TRAILING_COMMA.sub(r"\1", text)
    for variant in dict.fromkeys((text, repaired, _TRAILING_COMMA.sub(r"\1", text.translate(_SMART_QUOTES)))):
        for match in re.finditer(r"[\[{]", variant):
            try:
                yield decoder.raw_decode(variant, match.start())[0]
            except ValueError:
                continue


def _scene_items(value) -> list | None:
    """The list of scene objects in a parsed JSON value: a bare array or {"scenes": [...]}."""
    if isinstance(value, dict):
        value = value.get("scenes")
    if isinstance(value, list) and any(isinstance(item, dict) for item in value):
        return value
    return None


def _prompt_from_narration(narration: str) -> str:
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", narration) if s.strip()]
    title = " ".join(sentences[0].split()[:8]).rstrip(".!?,;:")
    points = "\n".join(f"- {sentence}" for sentence in (sentences[1:4] or sentences[:1]))
    return f"Title: {title}\nKey Points:\n{points}".rstrip()


def _scenes_from_items(items: list) -> list[Scene]:
    scenes: list[Scene] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        narration = item.get("narration_text") or item.get("narration")
        if not isinstance(narration, str) or not narration.strip():
            continue
        narration = " ".join(narration.split())
        visual_type = str(item.get("visual_type") or "").strip().lower()
        prompt = item.get("visual_prompt")
        prompt = prompt.strip() if isinstance(prompt, str) else ""
        scenes.append(Scene(
            id=len(scenes) + 1,
            narration_text=narration,
            visual_type=visual_type if visual_type in VISUAL_TYPES else "slide",
            visual_prompt=prompt or _prompt_from_narration(narration),
        ))
        if len(scenes) == MAX_SCENES:
            break
    return scenes


def parse_script(reply: str) -> list[Scene]:
    """The scenes in an LLM reply, however untidy; ScriptError when nothing usable is in it."""
    for text in _candidate_texts(_without_thinking(reply)):
        for value in _json_values(text):
            items = _scene_items(value)
            scenes = _scenes_from_items(items) if items else []
            if scenes:
                return scenes
    excerpt = " ".join(reply.split())[:200]
    raise ScriptError(f"llm: no usable script in the reply: {excerpt}" if excerpt else "llm: the reply is empty")
