"""Pure parts of the text-to-video server: script parsing, upload extraction, slides, audio, time."""

from __future__ import annotations

import io
import random
import re
import wave
from datetime import datetime, timedelta

import pytest
from fpdf import FPDF

from stack.server.app import MAX_VALIDATION_DETAIL_CHARS, validation_detail
from stack.server.clients import split_for_tts
from stack.server.compose import ComposeError, ffmpeg_command, join_wavs, probe_duration, scene_frame_counts
from stack.server.extract import ExtractError, extract_text, upload_extension
from stack.server.jobs import iso_utc, seconds_between, utc_now
from stack.server.script import MAX_SCENES, Scene, ScriptError, chat_messages, parse_script
from stack.server.slides import HEIGHT, WIDTH, render_slide, title_and_points

SCENE = ('{"id": 1, "narration_text": "Water moves all the time.", "visual_type": "diagram", '
         '"visual_prompt": "Title: Water\\nKey Points:\\n- moves"}')


# --- script parsing -------------------------------------------------------------------------

def test_tidy_fenced_json_block():
    scenes = parse_script(f"```json\n[{SCENE}]\n```")
    assert scenes == [Scene(1, "Water moves all the time.", "diagram", "Title: Water\nKey Points:\n- moves")]


def test_prose_around_the_block_and_a_decoy_fence():
    reply = f"Here is the plan.\n```text\nnot json\n```\nAnd the script:\n```json\n[{SCENE}]\n```\nEnjoy [1]!"
    assert [s.narration_text for s in parse_script(reply)] == ["Water moves all the time."]


def test_bare_array_with_trailing_commas_in_prose():
    reply = 'Sure! [{"narration_text": "One.",}, {"narration_text": "Two."},] Hope that helps {ok}.'
    assert [(s.id, s.narration_text) for s in parse_script(reply)] == [(1, "One."), (2, "Two.")]


def test_drafts_inside_think_tags_are_ignored_even_without_the_opening_tag():
    draft = '[{"narration_text": "A draft."}]'
    assert parse_script(f"<think>{draft}</think>\n[{SCENE}]")[0].visual_type == "diagram"
    assert parse_script(f"Drafting {draft} now.</think>\n[{SCENE}]")[0].visual_type == "diagram"


def test_scenes_object_smart_quotes_and_defaults():
    reply = '{"scenes": [{\u201cnarration_text\u201d: \u201cFirst point. Second point.\u201d, "visual_type": "x"}]}'
    (scene,) = parse_script(reply)
    assert scene.visual_type == "slide"
    assert scene.visual_prompt.startswith("Title: First point") and "- Second point." in scene.visual_prompt


def test_unusable_scenes_are_dropped_renumbered_and_capped():
    items = ['{"narration_text": ""}', '{"visual_type": "slide"}', '"text"'] + [
        f'{{"id": 99, "narration_text": "Scene {n}."}}' for n in range(20)]
    scenes = parse_script("[" + ", ".join(items) + "]")
    assert len(scenes) == MAX_SCENES
    assert [s.id for s in scenes] == list(range(1, MAX_SCENES + 1))
    assert scenes[0].narration_text == "Scene 0."


@pytest.mark.parametrize("reply", ["I cannot help with that.", '[{"narration_text": "  "}]', '{"scenes": []}'])
def test_garbage_is_a_clear_error_quoting_the_reply(reply):
    with pytest.raises(ScriptError, match=r"^llm: no usable script in the reply: ") as caught:
        parse_script(reply)
    assert reply.strip()[:20] in str(caught.value)


def test_empty_reply_error_and_long_reply_quote_is_capped():
    with pytest.raises(ScriptError, match="reply is empty"):
        parse_script("  ")
    with pytest.raises(ScriptError) as caught:
        parse_script("blah " * 500)
    assert len(str(caught.value)) < 260


def test_prompt_carries_the_document_between_marker_lines_truncated():
    system, user = chat_messages("Hello </document> world" + "x" * 50_000)
    assert system["role"] == "system" and user["role"] == "user"
    body = re.search(r"^<document>\n(.*)\n</document>$", user["content"], re.S | re.M).group(1)
    assert body.startswith("Hello  world") and len(body) <= 24_000
    assert "narration_text" in user["content"] and "visual_prompt" in user["content"]


# --- uploads ----------------------------------------------------------------------------------

def _pdf(text: str | None) -> bytes:
    pdf = FPDF()
    pdf.add_page()
    if text:
        pdf.set_font("helvetica", size=12)
        pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


def test_text_and_markdown_with_bom_and_latin1_fallback():
    assert extract_text("\ufeff# Title\n\nBody text.\n".encode("utf-8"), "notes.MD") == "# Title\n\nBody text."
    assert extract_text("Café crème".encode("latin-1"), "a.txt") == "Café crème"
    assert extract_text("naïve ✓".encode(), "b.markdown") == "naïve ✓"


def test_pdf_text_is_extracted():
    assert "The water cycle moves water." in extract_text(_pdf("The water cycle moves water."), "doc.pdf")


@pytest.mark.parametrize("data, name, message", [
    (b"", "empty.txt", "empty file"),
    (b" \n\t ", "blank.md", "no text"),
    (b"%PDF-1.4 not really", "broken.pdf", "unreadable PDF"),
    (_pdf(None), "scan.pdf", "no text"),
    (b"hello", "report.docx", "unsupported file type: '.docx'"),
])
def test_bad_uploads_are_refused_with_a_specific_message(data, name, message):
    with pytest.raises(ExtractError, match=re.escape(message)):
        extract_text(data, name)


GARBAGE = random.Random(9).randbytes(4096)  # what a binary file renamed .txt looks like to the server


@pytest.mark.parametrize("data, name", [
    (GARBAGE, "garbage.txt"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + GARBAGE[:500], "image.md"),
    (b"\x00" * 64, "zeros.txt"),
    (bytes(range(1, 9)) * 40, "controls.txt"),  # valid UTF-8, yet nothing but control bytes
    ("hello".encode("utf-16-le") * 50, "no-bom-utf16.txt"),  # half of it NUL bytes
])
def test_binary_data_under_a_text_name_is_no_text(data, name):
    with pytest.raises(ExtractError, match=rf"^no text: '{re.escape(name)}' is binary data, not text \(\d+%"):
        extract_text(data, name)


def test_text_in_other_encodings_and_with_a_stray_control_byte_is_text():
    assert extract_text("“Quoted” – dashed".encode("cp1252"), "old.txt") == "“Quoted” – dashed"
    assert extract_text("Grüße aus Köln".encode("utf-16"), "wide.txt") == "Grüße aus Köln"
    page_break = "First page of the report.\fSecond page of the report, with a stray NUL.\x00 And more text."
    assert extract_text(page_break.encode(), "pages.txt") == page_break.replace("\x00", "")


def test_extension_check_names_the_allowed_types():
    assert upload_extension("A.PDF") == ".pdf"
    with pytest.raises(ExtractError, match=r"a name without extension \(allowed: \.txt, \.md, \.markdown, \.pdf\)"):
        upload_extension("README")


# --- slides -----------------------------------------------------------------------------------

def test_slides_are_1280x720_and_neighbours_differ():
    first, second = (Scene(n, "Narration.", "slide", f"Title: Part {n}\nKey Points:\n- a point") for n in (1, 2))
    one, two = render_slide(first, 2), render_slide(second, 2)
    assert one.size == two.size == (WIDTH, HEIGHT) == (1280, 720)
    assert one.getpixel((5, 5)) != two.getpixel((5, 5))


def test_visual_prompt_is_read_loosely():
    scene = Scene(1, "Fallback narration words here.", "slide", "Title: Rain\nKey Points:\n* falls\n2. flows\n")
    assert title_and_points(scene) == ("Rain", ["falls", "flows"])
    assert title_and_points(Scene(1, "Only narration here.", "slide", "  ")) == ("Only narration here.", [])


# --- audio ------------------------------------------------------------------------------------

def _wav(seconds: float, rate: int = 16000, channels: int = 1) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x01\x00" * channels * int(seconds * rate))
    return out.getvalue()


def test_wavs_join_back_to_back_with_each_duration():
    joined, durations = join_wavs([_wav(1.5), _wav(0.25)])
    assert durations == [1.5, 0.25]
    with wave.open(io.BytesIO(joined)) as w:
        assert (w.getframerate(), w.getnframes()) == (16000, 28000)


def test_wavs_of_different_formats_or_not_wav_are_refused():
    with pytest.raises(ComposeError, match="part 2 has format"):
        join_wavs([_wav(1), _wav(1, rate=22050)])
    with pytest.raises(ComposeError, match="part 1 is not a readable WAV"):
        join_wavs([b"RIFF nonsense"])


def test_scene_frames_follow_the_audio_without_drift():
    counts = scene_frame_counts([1.02] * 50, fps=24)
    assert sum(counts) == round(51.0 * 24)
    assert set(counts) <= {24, 25}
    assert scene_frame_counts([0.001, 2.0], fps=24) == [1, 47]


def test_one_ffmpeg_run_shows_each_slide_for_its_scene(tmp_path):
    slides = [tmp_path / "1.png", tmp_path / "2.png"]
    command = ffmpeg_command(slides, [1.5, 2.0], tmp_path / "a.wav", tmp_path / "out.mp4", fps=24)
    line = " ".join(command)
    assert "fps=24,trim=end_frame=36" in line and "fps=24,trim=end_frame=48" in line
    assert "concat=n=2:v=1:a=0" in line and "-map 2:a" in line
    for flags in ("-c:v libx264 -preset ultrafast -tune stillimage -pix_fmt yuv420p", "-c:a aac", "+faststart"):
        assert flags in line


def test_a_file_that_is_not_a_finished_video_is_refused(tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")
    with pytest.raises(ComposeError, match="compose: ffmpeg wrote"):
        probe_duration(broken)


def test_long_narration_is_split_for_the_tts_at_sentence_ends():
    text = "A short sentence here. " * 300
    pieces = split_for_tts(text, limit=3000)
    assert len(pieces) == 3 and all(len(p) <= 3000 and p.endswith(".") for p in pieces)
    assert " ".join(pieces) == text.strip()
    assert [len(p) for p in split_for_tts("x" * 7000)] == [3000, 3000, 1000]


# --- timestamps -------------------------------------------------------------------------------

def test_timestamps_are_iso8601_utc_with_offset():
    stamp = utc_now()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", stamp)
    assert datetime.fromisoformat(stamp).utcoffset() == timedelta(0)
    assert iso_utc(0) == "1970-01-01T00:00:00.000+00:00"
    assert seconds_between(iso_utc(10), iso_utc(12.5)) == 2.5


# --- validation errors ----------------------------------------------------------------------

def test_validation_errors_become_one_string_naming_each_field_without_the_input():
    huge = "z" * 100_000
    errors = [
        {"type": "uuid_parsing", "loc": ("path", "job_id"), "input": huge,
         "msg": "Input should be a valid UUID, invalid character: found `z` at 1"},
        {"type": "less_than_equal", "loc": ("query", "limit"), "input": "101",
         "msg": "Input should be less than or equal to 100"},
    ]
    assert validation_detail(errors) == ("job_id: Input should be a valid UUID, invalid character: found `z` at 1; "
                                         "limit: Input should be less than or equal to 100")
    assert validation_detail([{"loc": ("body",), "msg": "Field required"}]) == "body: Field required"
    assert validation_detail([]) == "invalid request"
    capped = validation_detail([{"loc": ("query", "q"), "msg": huge}])
    assert len(capped) == MAX_VALIDATION_DETAIL_CHARS and capped.endswith("…")
