"""The workload's documents: each one the target could not use is refused when the profile loads, with its
reason; every upload is made unique with a line a narrator does not read; identical videos are flagged."""

from __future__ import annotations

import codecs
import io
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter

from analysis.metrics import compute_metrics
from analysis.schema import frame
from profiles.settings import ProfileError, load_profile
from profiles.uploads import nonce_line, unique_upload
from stack.llm.planner import plan_scenes
from stack.server.extract import extract_text

DOCS = Path(__file__).parent.parent / "profiles" / "documents"
NONCE = "5f0c2a9e41b84d7f9b3e6a1c0d2e4f68"


def blank_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def refusal(tmp_path: Path, name: str, content: bytes, *overrides: str) -> str:
    """The whole message of a profile refused for a workload of this one document."""
    document = tmp_path / name
    document.write_bytes(content)
    with pytest.raises(ProfileError) as refused:
        load_profile("smoke", [f"workload.documents=['{document}']", f'results_dir="{tmp_path}"', *overrides])
    return str(refused.value)


@pytest.mark.parametrize(("name", "content", "reason"), [
    ("empty.txt", b"", "empty file"),
    ("blank.md", b" \n\t\n", "no text: 'blank.md' holds no extractable text"),
    ("escapes.md", b"\x1b\x07\x01\x02\x03ab\x04\x05\x06\x0e\x0f\n", "no text: 'escapes.md' is binary data, not "
                                                                  "text (77% of it control bytes"),
    ("utf16-without-bom.txt", "hello there\n".encode("utf-16-le"), "no text: 'utf16-without-bom.txt' is binary data"),
    ("scan.pdf", blank_pdf(), "no text: 'scan.pdf' holds no extractable text (a scanned PDF holds images, not text)"),
    ("broken.pdf", b"%PDF-1.4\nthis is no PDF\n", "unreadable PDF:"),
    ("slides.docx", b"PK\x03\x04 a zip", "unsupported type '.docx' (the target takes .txt, .md, .pdf)"),
    ("README", b"plain words\n", "unsupported type no suffix (the target takes .txt, .md, .pdf)"),
])
def test_a_document_the_target_cannot_use_is_refused_with_its_reason(tmp_path, name, content, reason):
    message = refusal(tmp_path, name, content)
    profile_path = Path(__file__).parent.parent / "profiles" / "smoke.toml"
    assert message.startswith(f"profile {profile_path}: invalid\n  workload.documents: {tmp_path / name}: {reason}")
    assert len(message.splitlines()) == 2  # one line: what is wrong, no traceback


@pytest.mark.parametrize(("name", "content"), [
    ("utf16.txt", "Crème brûlée, a note in UTF-16.\r\n".encode("utf-16")),  # with its BOM, as Windows writes it
    ("utf16be.md", codecs.BOM_UTF16_BE + "# Bread\n\nFlour and water.\n".encode("utf-16-be")),
    ("windows.txt", "“Crème brûlée” – a note\n".encode("cp1252")),
])
def test_a_document_the_bundled_server_reads_as_text_is_accepted_and_sent_unique_in_its_encoding(tmp_path, name,
                                                                                                   content):
    """The profile's check is the bundled server's reading itself: what it takes as text loads, and the nonce line
    is added in the document's own encoding, so the server reads the original text and then the line."""
    document = tmp_path / name
    document.write_bytes(content)
    profile = load_profile("smoke", [f"workload.documents=['{document}']", f'results_dir="{tmp_path}"'])
    assert profile.workload.documents == [document]
    sent = unique_upload(name, content, NONCE)
    assert sent.startswith(content)
    text = extract_text(sent, name)
    assert text.startswith(extract_text(content, name)) and text.endswith(nonce_line(NONCE))
    newline = "\r\n" if "\r\n" in text else "\n"
    assert text.removesuffix(nonce_line(NONCE)).endswith(2 * newline)  # a block of its own, in the text's line ending


def test_a_document_over_the_upload_limit_is_refused_without_being_read(tmp_path):
    assert refusal(tmp_path, "big.txt", b"word " * 100, "target.max_upload_bytes=400").endswith(
        "big.txt: 500 bytes, larger than the target's upload limit target.max_upload_bytes = 400")


def test_the_nonce_line_counts_against_the_upload_limit_only_when_it_is_sent(tmp_path):
    text = b"A short note that fits.\n"
    limit = f"target.max_upload_bytes={len(text) + 10}"
    assert refusal(tmp_path, "note.txt", text, limit).endswith(
        f"note.txt: {len(text) + 1 + len(nonce_line(NONCE)) + 1} bytes, larger than the target's upload limit "
        f"target.max_upload_bytes = {len(text) + 10} with its nonce line (workload.unique_documents)")
    profile = load_profile("smoke", [f"workload.documents=['{tmp_path / 'note.txt'}']", f'results_dir="{tmp_path}"',
                                     limit, "workload.unique_documents=false"])
    assert profile.workload.documents == [tmp_path / "note.txt"]


def test_every_bad_document_is_named_each_on_its_line(tmp_path):
    (tmp_path / "empty.md").write_bytes(b"")
    (tmp_path / "scan.pdf").write_bytes(blank_pdf())
    with pytest.raises(ProfileError) as refused:
        load_profile("smoke", [f"workload.documents=['{DOCS / 'short_note.txt'}', '{tmp_path / 'empty.md'}', "
                               f"'{tmp_path / 'scan.pdf'}']", f'results_dir="{tmp_path}"'])
    assert str(refused.value).splitlines()[1:] == [
        f"  workload.documents: {tmp_path / 'empty.md'}: empty file",
        f"  workload.documents: {tmp_path / 'scan.pdf'}: no text: 'scan.pdf' holds no extractable text (a scanned PDF "
        "holds images, not text)"]


# --- every upload made unique -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["one_page.md", "field_notes.txt", "short_note.txt"])
def test_a_text_document_gets_a_trailing_comment_line_that_the_bundled_planner_does_not_narrate(name):
    original = (DOCS / name).read_bytes()
    sent = unique_upload(name, original, NONCE)
    assert sent.startswith(original) and sent.endswith(f"\n\n<!-- t2v-bench nonce {NONCE} -->\n".encode())
    assert unique_upload(name, original, "another-nonce") != sent
    assert plan_scenes(sent.decode()) == plan_scenes(original.decode())


def test_a_text_without_a_final_newline_or_with_crlf_keeps_its_line_ending():
    assert unique_upload("a.txt", b"one line", "n1") == b"one line\n\n<!-- t2v-bench nonce n1 -->\n"
    assert unique_upload("a.md", b"a\r\nb\r\n", "n1") == b"a\r\nb\r\n\r\n<!-- t2v-bench nonce n1 -->\r\n"


def test_a_pdf_gets_invisible_text_in_an_incremental_update():
    original = (DOCS / "bread.pdf").read_bytes()
    sent = unique_upload("bread.pdf", original, NONCE)
    assert sent.startswith(original)  # an incremental update: the original bytes are kept whole
    before, after = PdfReader(io.BytesIO(original)), PdfReader(io.BytesIO(sent))
    assert len(after.pages) == len(before.pages)
    assert after.pages[-1].extract_text() == before.pages[-1].extract_text() + f"\n{nonce_line(NONCE)}"
    assert b"3 Tr" in after.pages[-1].get_contents().get_data()  # render mode 3: neither filled nor stroked
    # the bundled server reads the comment, its planner does not narrate it
    text, text_sent = extract_text(original, "bread.pdf"), extract_text(sent, "bread.pdf")
    assert text_sent.endswith(nonce_line(NONCE)) and plan_scenes(text_sent) == plan_scenes(text)
    assert unique_upload("bread.pdf", sent, "second") != sent  # a marked PDF can be marked again


@pytest.mark.parametrize("nonce", ["", "a b", "x) Tj (y", "-->", "n" * 65])
def test_a_nonce_that_could_break_out_of_its_comment_is_refused(nonce):
    with pytest.raises(ValueError, match="a nonce is 1 to 64 letters, digits or dashes"):
        nonce_line(nonce)


def test_what_cannot_be_made_unique_says_so():
    with pytest.raises(ValueError, match="cannot add a line to this PDF"):
        unique_upload("x.pdf", b"%PDF-1.4 nothing", NONCE)
    with pytest.raises(ValueError, match="no way to make a .docx document unique"):
        unique_upload("x.docx", b"PK", NONCE)


# --- identical videos flagged -----------------------------------------------------------------------------


def test_verified_videos_sharing_a_hash_are_grouped_by_job():
    videos = [{"job_id": "a", "sha256": "h1", "ok": True}, {"job_id": "b", "sha256": "h2", "ok": True},
              {"job_id": "c", "sha256": "h1", "ok": True}, {"job_id": "d", "sha256": "h2", "ok": False},
              {"job_id": "e", "sha256": "h3", "ok": True}, {"job_id": "f", "sha256": "h1", "ok": True},
              {"job_id": "g", "sha256": None, "ok": True}, {"job_id": "h", "sha256": None, "ok": True}]
    run = compute_metrics({"videos": frame("videos", videos)}, {}, [])
    # b and d share h2, but d failed its checks: not a verified video; no hash, nothing to compare
    assert run.identical_videos == [["a", "c", "f"]]
    assert compute_metrics({"videos": frame("videos", videos[:2])}, {}, []).identical_videos == []
