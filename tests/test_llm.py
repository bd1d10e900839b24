"""The stand-in LLM: the extractive planner's rules, and the Ollama API subset as a real process."""

from __future__ import annotations

import json
import re
import signal

import httpx
import pytest

from stack.llm.planner import NARRATION_WORD_CAP, plan_scenes, render_reply, split_sentences, strip_markdown
from stack.llm.prompt import document_in, is_instruction
from stack.server.extract import extract_text
from tests.stackutil import ROOT, service_process

MARKDOWN_DOC = """\
# Redis in Five Minutes

Redis is an in-memory data store. It serves as a **cache**, a queue and a database.

## Installing

Install it with your package manager:

```bash
apt-get install redis-server
redis-server --port 6379 --save "" --appendonly no
redis-cli ping
```

## What it offers

- Fast reads and writes
- Persistence to disk, with snapshots
- Publish and subscribe messaging

## Talking to it

Connect with `redis-cli` and type *PING*. The [reference](https://redis.io/docs) lists more commands, e.g. SET and GET.
"""

PLAIN_DOC = """\
Video is the most watched kind of content on the web today. Teams that write documentation \
rarely have the time to record narrated walkthroughs of their products. A service that turns \
text into video closes that gap by reading the document aloud over simple slides. It does not \
replace a human presenter, but it gives every page a version that people can watch.

The service first asks a language model for a script. The script splits the document into \
scenes, and each scene has narration and a description of its visual. The narration must be \
short enough to keep the viewer's attention, and the visual must match what is being said. \
A model that invents facts would make the video worse than the page it came from.

Next, every scene is spoken by a text-to-speech engine. The audio length of each scene decides \
how long its slide stays on screen. Slides show a title and a few key points, drawn in large \
type so that they stay readable on a phone. Code samples get their own slides with a monospaced \
font and no more than a dozen lines.

Finally, the scenes are encoded into one MP4 file with H.264 video and AAC audio. The file can \
be downloaded as soon as the job is complete. Failures in any step are reported with a clear \
message instead of a silent timeout. A job that loses one scene still finishes, and says which \
scene it lost.

Measuring such a service means sending it real documents and timing each phase. Memory and CPU \
use of every process matter as much as the latency. A campaign that only checks status codes \
misses most of what users feel. The numbers are worth keeping from one release to the next, \
so that a slow change is caught before it ships.
"""

# A PDF's text layer: Windows newlines, lines broken mid-sentence, a hyphenated word, a ligature.
PDF_TEXT = (
    "Annual report of the Ünïcode Society\r\n\r\n"
    "The society met ﬁve times this year to review the state of text encod-\r\n"
    "ing in published documents. Members agreed that\r\nnormalisation matters.\r\n\r\n"
    "Budget decisions were postponed to the spring meeting. The treasurer\r\n"
    "presented a draft that nobody opposed.\r\n"
)


def normalised(text: str) -> str:
    return " ".join(text.split())


def source_text(document: str) -> str:
    """The document as the planner reads it: markdown stripped, lines joined, whitespace folded."""
    joined = re.sub(r"(\w)-\r?\n(?=[a-z])", r"\1", document).replace("ﬁ", "fi")
    return normalised(strip_markdown(joined))


def key_points(scene: dict) -> list[str]:
    return [line[2:] for line in scene["visual_prompt"].split("\n") if line.startswith("- ")]


def assert_well_formed(scenes: list[dict], document: str) -> None:
    source = source_text(document)
    assert [scene["id"] for scene in scenes] == list(range(1, len(scenes) + 1))
    for scene in scenes:
        narration = scene["narration_text"]
        assert narration.strip()
        assert len(narration.split()) <= NARRATION_WORD_CAP
        for sentence in split_sentences(narration):
            # the planner ends every sentence with a stop, so compare without the final mark
            assert sentence.rstrip(".") in source, sentence
        assert not re.search(r"[*_`#]|\]\(", narration), narration
        assert scene["visual_type"] in ("slide", "code", "diagram")
        title, points_header = scene["visual_prompt"].split("\n")[:2]
        assert title.startswith("Title: ") and len(title) > len("Title: ")
        assert points_header == "Key Points:"
        points = key_points(scene)
        assert 1 <= len(points) <= 4
        assert all(len(point.split()) <= 8 for point in points)
        if len(split_sentences(narration)) >= 2:
            assert len(points) >= 2


def test_markdown_headings_make_the_scenes():
    scenes = plan_scenes(MARKDOWN_DOC)
    assert_well_formed(scenes, MARKDOWN_DOC)
    titles = [scene["visual_prompt"].split("\n")[0] for scene in scenes]
    assert titles == [
        "Title: Redis in Five Minutes",
        "Title: Installing",
        "Title: What it offers",
        "Title: Talking to it",
    ]
    assert [scene["visual_type"] for scene in scenes] == ["slide", "code", "diagram", "slide"]
    assert scenes[3]["narration_text"] == (
        "Connect with redis-cli and type PING. The reference lists more commands, e.g. SET and GET."
    )
    assert key_points(scenes[2]) == ["Fast reads and writes", "Persistence to disk", "Publish and subscribe messaging"]


def test_plain_paragraphs_are_scenes():
    scenes = plan_scenes(PLAIN_DOC)
    assert 250 <= len(PLAIN_DOC.split()) <= 350
    assert len(scenes) == 5
    assert_well_formed(scenes, PLAIN_DOC)
    assert scenes[1]["narration_text"].startswith("The service first asks a language model for a script.")
    assert scenes[0]["visual_prompt"].startswith("Title: Video is the most watched kind")


def test_one_paragraph_is_cut_by_sentences():
    paragraph = normalised(PLAIN_DOC)
    scenes = plan_scenes(paragraph)
    assert 3 <= len(scenes) <= 8
    assert_well_formed(scenes, paragraph)
    told = " ".join(scene["narration_text"] for scene in scenes)
    assert split_sentences(told)[0] == split_sentences(paragraph)[0]


def test_a_single_sentence_is_one_scene():
    scenes = plan_scenes("Hello, world")
    assert scenes == [
        {
            "id": 1,
            "narration_text": "Hello, world.",
            "visual_type": "slide",
            "visual_prompt": "Title: Hello, world\nKey Points:\n- Hello, world",
        }
    ]


def test_two_sentences_make_two_scenes():
    assert len(plan_scenes("It rains. The street is wet.")) == 2


def test_long_document_is_grouped_into_eight_scenes():
    sections = [f"## Part {n}\n\nPart {n} begins here. It has a second sentence of its own." for n in range(1, 15)]
    document = "\n\n".join(sections)
    scenes = plan_scenes(document)
    assert len(scenes) == 8
    assert_well_formed(scenes, document)
    told = " ".join(scene["narration_text"] for scene in scenes)
    for n in range(1, 15):  # grouping summarises, it never drops a section
        assert f"Part {n} begins here." in told


def test_long_section_narration_is_capped_at_whole_leading_sentences():
    sentences = [f"Sentence number {n} says something about the topic at hand." for n in range(1, 41)]
    document = "# One\n\nShort intro.\n\n# Two\n\n" + " ".join(sentences) + "\n\n# Three\n\nShort end."
    scenes = plan_scenes(document)
    assert_well_formed(scenes, document)
    long_scene = scenes[1]["narration_text"]
    assert long_scene.startswith(sentences[0])
    assert long_scene.endswith(".") and len(long_scene.split()) > NARRATION_WORD_CAP - 10


def test_unpunctuated_text_is_cut_at_the_word_cap():
    scenes = plan_scenes("word " * 500)
    assert len(scenes) == 1
    assert len(scenes[0]["narration_text"].split()) == NARRATION_WORD_CAP


def test_pdf_text_lines_are_joined():
    scenes = plan_scenes(PDF_TEXT)
    assert_well_formed(scenes, PDF_TEXT)
    told = " ".join(scene["narration_text"] for scene in scenes)
    assert "met five times this year to review the state of text encoding in published documents." in told
    assert "Members agreed that normalisation matters." in told
    assert "\r" not in told and "\n" not in told


def test_empty_document_gives_an_empty_script():
    for document in ("", "   \n\n", "# \n\n```\n```\n"):
        assert plan_scenes(document) == []
    assert json.loads(json_block(render_reply([]))) == []


def test_reply_is_prose_then_a_json_block():
    scenes = plan_scenes(MARKDOWN_DOC)
    reply = render_reply(scenes)
    assert not reply.startswith("```")
    assert json.loads(json_block(reply)) == scenes
    assert '\n  {\n    "id": 1,' in reply  # indent 2, as an LLM prints it


def test_document_is_found_between_markers():
    prompt = "Write a script.\n<document>\nLine one.\n\nLine two.\n</document>\nAnswer in JSON."
    assert document_in(prompt) == "Line one.\n\nLine two."
    assert document_in("Script:\r\n<document>\r\n</document>\r\n") == ""
    assert document_in("No markers at all.") == "No markers at all."


# --- a document wrapped in instructions, without <document> tags ------------------------------------------

# What a server that reaches its LLM only through the OpenAI API sends: instructions in the system
# message AND around the document in the user message (the upstream server's prompt has no tags).
UPSTREAM_SYSTEM = (
    "You are an expert educational video script writer. You turn documents into engaging narrated "
    "explainer videos made of slides and diagrams. Always answer with valid JSON only."
)


def upstream_prompt(document: str) -> str:
    return f"""Create a video script from the following document. Break the content into logical scenes that \
flow naturally from one to the next.

Document:
{document}

Return a JSON array of scenes. Each scene must have:
- id: the scene number, starting at 1
- narration_text: what the narrator says in this scene (2-4 sentences, conversational)
- visual_type: one of "slide", "diagram", "chart", "formula", "code"
- visual_prompt: a description of the visual, as "Title: ...\\nKey Points:\\n- ...\\n- ..."

Guidelines:
- Keep each scene focused on one idea
- Cover the whole document in order
- Use simple language that is easy to follow when spoken aloud

Example:
```json
[{{"id": 1, "narration_text": "...", "visual_type": "slide", "visual_prompt": "Title: ...\\nKey Points:\\n- ..."}}]
```

Return ONLY the JSON array, no other text."""


ASK = ("Return a JSON array of scenes, each with id, narration_text, visual_type and visual_prompt. "
       "Return only the JSON, no other text.")
WRAPPINGS = {
    "upstream": upstream_prompt,
    "markdown-sections": lambda d: f"## Task\nTurn the document into a narrated explainer video.\n\n"
                                   f"## Document\n{d}\n\n## Output format\n{ASK}\n",
    "triple-quotes": lambda d: f'Convert this text into a video script:\n"""\n{d}\n"""\n{ASK}',
    "fence": lambda d: f"Here is the content to turn into scenes:\n\n```\n{d}\n```\n\n{ASK}",
    "begin-end-lines": lambda d: f"You are a video script writer.\n\n=== BEGIN DOCUMENT ===\n{d}\n"
                                 f"=== END DOCUMENT ===\n\nBe concise.\n\n{ASK}",
    "dashes": lambda d: f"Create a video script for the text between the lines.\n---\n{d}\n---\n{ASK}",
    "no-marker": lambda d: f"Please write a short explainer video script about the following.\n\n{d}\n\n{ASK}",
    "document-first": lambda d: f"{d}\n\nTurn the text above into a video script of 3 to 8 scenes. {ASK}",
    "inline-label": lambda d: f"Make a video script with scenes.\nContent: {d}\n\n{ASK}",
    "bracket-lines": lambda d: f"Turn this into scenes.\n\n[DOCUMENT]\n{d}\n[END]\n\n{ASK}",
}


def campaign_documents() -> dict[str, str]:
    """The shipped documents as a server extracts them, and this file's own (markdown with code, PDF text)."""
    folder = ROOT / "profiles" / "documents"
    shipped = {path.name: extract_text(path.read_bytes(), path.name) for path in sorted(folder.iterdir())}
    return shipped | {"markdown": MARKDOWN_DOC, "plain": PLAIN_DOC, "pdf-text": PDF_TEXT}


@pytest.mark.parametrize("wrapping", WRAPPINGS)
def test_only_the_wrapped_document_is_planned(wrapping):
    for name, document in campaign_documents().items():
        prompt = WRAPPINGS[wrapping](document)
        assert normalised(document_in(prompt)) == normalised(document), name
        assert plan_scenes(document_in(prompt)) == plan_scenes(document), name


def test_the_short_note_is_no_longer_narrated_with_its_instructions():
    """The upstream run: a 394-byte note became 8 scenes and ~250 s of speech. Now its 4 paragraphs,
    every narrated sentence the note's own, and no more words than the note has."""
    note = (ROOT / "profiles" / "documents" / "short_note.txt").read_text()
    scenes = plan_scenes(document_in(upstream_prompt(note)))
    assert len(scenes) == 4
    assert_well_formed(scenes, note)
    told = sum(len(scene["narration_text"].split()) for scene in scenes)
    assert told <= len(note.split())


def test_a_labelled_document_is_kept_even_where_it_reads_like_instructions():
    document = ("Create a JSON file named settings.json for the scenes of your video.\n\n"
                "The file is read once when the program starts. Changes take effect after a restart.")
    prompt = f"Turn the document into a video script.\n\nDocument:\n{document}\n\n{ASK}"
    assert document_in(prompt) == document


def test_a_bold_title_is_the_documents_not_a_marker():
    report = "**Field Report**\n\nThe river rose two metres overnight. Farmers moved their cattle uphill."
    assert document_in(WRAPPINGS["no-marker"](report)) == report


def test_a_document_ending_in_its_own_instructions_section_keeps_it():
    recipe = ("Simple Bread\n\nThis bread needs only four things and a warm kitchen.\n\nInstructions:\n"
              "1. Mix the flour, water, salt and yeast.\n2. Let the dough rest for two hours.\n"
              "3. Bake at 230 degrees for forty minutes.")
    assert document_in(upstream_prompt(recipe)) == recipe


def test_a_prompt_of_instructions_only_is_planned_whole():
    prompt = "Write a short video script about the water cycle. Return only the JSON array."
    assert document_in(prompt) == prompt


@pytest.mark.parametrize("sentence", [
    "Return ONLY the JSON array, no other text.",
    "Create a video script from the following document.",
    "- narration_text: what the narrator says in this scene",
    "Each scene must have a title.",
    "You are an expert educational video script writer.",
    "Please keep it short.",
])
def test_sentences_to_the_model_are_instructions(sentence):
    assert is_instruction(sentence)


def test_sentences_of_documents_are_not_instructions():
    for document in campaign_documents().values():
        told = [sentence for sentence in split_sentences(normalised(strip_markdown(document)))]
        flagged = [sentence for sentence in told if is_instruction(sentence)]
        # PLAIN_DOC is about a text-to-video service and talks of scripts and scenes: a few, never most
        assert len(flagged) <= max(1, len(told) // 5), flagged


def json_block(reply: str) -> str:
    return re.search(r"```json\n(.*?)\n```", reply, re.DOTALL).group(1)


def test_service_process_speaks_the_ollama_subset():
    with service_process("stack.llm", "/api/version") as run:
        assert run.http.get("/api/version").json() == {"version": "0.1.0"}
        check_tags(run.http)
        check_chat(run.http)
        check_generate(run.http)
        check_openai_chat(run.http)
        check_openai_models(run.http)
        check_openai_client_request(run.http)
        check_errors(run.http)
    assert run.process.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once shut down cleanly
    assert run.output == b"", "logs should stay quiet: no access lines, no tracebacks"


PROMPT = f"Turn this document into scenes.\n<document>\n{MARKDOWN_DOC}</document>\nReply with JSON."


def check_tags(http: httpx.Client) -> None:
    models = http.get("/api/tags").json()["models"]
    assert [model["name"] for model in models] == ["extractive-planner:latest"]
    assert models[0]["details"]["family"] == "extractive"
    assert "qwen" not in json.dumps(models)


def check_chat(http: httpx.Client) -> None:
    body = {"model": "extractive-planner", "messages": [{"role": "user", "content": PROMPT}], "stream": False}
    answer = http.post("/api/chat", json=body).json()
    assert answer["done"] is True and answer["done_reason"] == "stop"
    assert answer["message"]["role"] == "assistant"
    assert json.loads(json_block(answer["message"]["content"])) == plan_scenes(MARKDOWN_DOC)
    assert answer["prompt_eval_count"] == len(PROMPT.split())
    assert answer["eval_count"] == len(answer["message"]["content"].split())
    assert answer["total_duration"] > 0

    streamed = http.post("/api/chat", json=body | {"stream": True, "model": "extractive-planner:latest"})
    assert streamed.headers["content-type"].startswith("application/x-ndjson")
    first, last = [json.loads(line) for line in streamed.text.splitlines()]
    assert first["done"] is False and first["message"]["content"] == answer["message"]["content"]
    assert last["done"] is True and last["message"]["content"] == "" and last["eval_count"] > 0
    default = http.post("/api/chat", json={key: value for key, value in body.items() if key != "stream"})
    assert len(default.text.splitlines()) == 2  # Ollama streams unless told not to


def check_generate(http: httpx.Client) -> None:
    answer = http.post("/api/generate", json={"model": "extractive-planner", "prompt": PROMPT, "stream": False}).json()
    assert answer["done"] is True
    assert json.loads(json_block(answer["response"])) == plan_scenes(MARKDOWN_DOC)
    streamed = http.post("/api/generate", json={"model": "extractive-planner", "prompt": PROMPT})
    first, last = [json.loads(line) for line in streamed.text.splitlines()]
    assert first["response"] == answer["response"] and last["response"] == "" and last["done"] is True


def check_openai_chat(http: httpx.Client) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPT}]
    body = {"model": "extractive-planner", "messages": messages}
    answer = http.post("/v1/chat/completions", json=body).json()
    assert answer["object"] == "chat.completion" and answer["model"] == "extractive-planner"
    assert answer["id"].startswith("chatcmpl-")
    content = answer["choices"][0]["message"]["content"]
    assert json.loads(json_block(content)) == plan_scenes(MARKDOWN_DOC)
    usage = answer["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    streamed = http.post("/v1/chat/completions", json=body | {"stream": True})
    assert streamed.headers["content-type"].startswith("text/event-stream")
    events = [line.removeprefix("data: ") for line in streamed.text.split("\n\n") if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    assert "".join(chunk["choices"][0]["delta"].get("content", "") for chunk in chunks) == content
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def check_openai_models(http: httpx.Client) -> None:
    """GET /v1/models, where a server that only speaks OpenAI (OPENAI_BASE_URL=.../v1) looks for its model."""
    listed = http.get("/v1/models")
    assert listed.status_code == 200
    assert listed.json()["object"] == "list"
    (model,) = listed.json()["data"]
    assert model["id"] == "extractive-planner:latest" and model["object"] == "model"
    assert model["owned_by"] and isinstance(model["created"], int)
    assert http.get("/v1/models/extractive-planner").json() == model
    unknown = http.get("/v1/models/gpt-4o")
    assert unknown.status_code == 404 and "gpt-4o" in unknown.json()["error"]["message"]


def check_openai_client_request(http: httpx.Client) -> None:
    """What an OpenAI client sends to {OPENAI_BASE_URL}/chat/completions with the upstream prompt:
    a bearer key, sampling options, content as text parts; the reply must plan only the document."""
    note = (ROOT / "profiles" / "documents" / "short_note.txt").read_text()
    body = {
        "model": "extractive-planner",
        "messages": [
            {"role": "system", "content": UPSTREAM_SYSTEM},
            {"role": "user", "content": [{"type": "text", "text": upstream_prompt(note)}]},
        ],
        "temperature": 0.7, "max_tokens": 4000, "n": 1,
    }
    answer = http.post("/v1/chat/completions", json=body, headers={"Authorization": "Bearer not-needed"})
    assert answer.status_code == 200, answer.text
    choice = answer.json()["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["message"]["role"] == "assistant"
    assert json.loads(json_block(choice["message"]["content"])) == plan_scenes(note)
    json_mode = http.post("/v1/chat/completions", json=body | {"response_format": {"type": "json_object"}}).json()
    # OpenAI's JSON mode always answers an object: the scenes go under a key
    assert json.loads(json_mode["choices"][0]["message"]["content"]) == {"scenes": plan_scenes(note)}
    images = [{"type": "image_url", "image_url": {"url": "data:,"}}]
    refused = http.post("/v1/chat/completions", json=body | {"messages": [{"role": "user", "content": images}]})
    assert refused.status_code == 400 and "text parts" in refused.json()["error"]["message"]


def check_errors(http: httpx.Client) -> None:
    unknown = http.post("/api/chat", json={"model": "qwen3:4b", "messages": [], "stream": False})
    assert (unknown.status_code, unknown.json()) == (404, {"error": "model 'qwen3:4b' not found"})
    assert http.post("/api/generate", json={"model": "llama3", "prompt": "hi"}).status_code == 404
    assert http.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": []}).status_code == 404
    for path, raw in [
        ("/api/chat", b"{not json"),
        ("/api/chat", b"[1, 2]"),
        ("/api/chat", b""),
        ("/api/chat", b'{"model": "extractive-planner", "messages": "hello"}'),
        ("/api/chat", b'{"model": "extractive-planner", "messages": [{"role": "user"}]}'),
        ("/api/chat", b'{"model": "extractive-planner", "messages": [], "stream": "yes"}'),
        ("/api/chat", b'{"messages": []}'),
        ("/api/generate", b'{"model": "extractive-planner", "prompt": 42}'),
        ("/api/generate", b"\xff\xfe garbage"),
        ("/api/generate", b"[" * 100_000),
        ("/v1/chat/completions", b"{"),
    ]:
        response = http.post(path, content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 400, (path, raw[:40], response.text)
        assert response.json()["error"], (path, raw[:40])
    empty = http.post("/api/chat", json={"model": "extractive-planner", "messages": [], "stream": False}).json()
    assert json.loads(json_block(empty["message"]["content"])) == []
