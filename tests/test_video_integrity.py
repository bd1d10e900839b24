"""check_video on real MP4s made with PyAV: a good one passes, each kind of damage is named."""

import hashlib
import random

import pytest

from analysis.video import check_video, sha256_file
from tests.videos import make_video, truncate

SMALL = (320, 180)


@pytest.fixture(scope="module")
def good_video(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("videos") / "good.mp4", seconds=2.0, size=SMALL)


def problems_of(result) -> str:
    assert not result.ok
    return "; ".join(result.problems)


def test_good_video_passes(good_video):
    result = check_video(good_video, expected_resolution="320x180", reported_seconds=2.0)

    assert result.ok, result.problems
    assert result.opens
    assert (result.video_codec, result.audio_codec) == ("h264", "aac")
    assert (result.width, result.height, result.fps) == (320, 180, 24.0)
    assert (result.frames_decoded, result.decode_errors) == (48, 0)
    assert result.video_seconds == pytest.approx(2.0, rel=0.01)
    assert result.audio_seconds == pytest.approx(2.0, rel=0.01)
    assert result.max_mean_luma > 100
    assert result.audio_rms_dbfs == pytest.approx(-9.0, abs=0.5)  # a 0.5-amplitude sine
    assert result.size_bytes == good_video.stat().st_size
    assert result.sha256 == sha256_file(good_video) == hashlib.sha256(good_video.read_bytes()).hexdigest()


def test_as_row_is_flat_plain_values(good_video):
    row = check_video(good_video).as_row()

    assert row["ok"] is True and row["problems"] == ""
    assert all(value is None or type(value) in (str, int, float, bool) for value in row.values())


def test_truncated_with_index_last_does_not_open(good_video):
    result = check_video(truncate(good_video, 0.6))

    assert not result.opens
    assert "cannot open as MP4" in problems_of(result)


def test_truncated_with_index_first_is_caught_by_missing_frames(tmp_path):
    video = make_video(tmp_path / "faststart.mp4", seconds=2.0, size=SMALL, faststart=True)
    result = check_video(truncate(video, 0.6))

    assert result.opens
    assert 0 < result.frames_decoded < 48
    assert f"decoded {result.frames_decoded} of 48 video frames" in problems_of(result)


def test_corrupt_bytes_count_as_decode_errors(good_video, tmp_path):
    data = bytearray(good_video.read_bytes())
    noise = random.Random(7)
    for i in range(len(data) * 4 // 10, len(data) * 6 // 10):  # inside the media data, before the index
        data[i] = noise.randrange(256)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(data)

    result = check_video(corrupt)

    assert result.opens
    assert result.decode_errors > 0
    assert "failed to decode" in problems_of(result)


def test_no_audio_stream(tmp_path):
    result = check_video(make_video(tmp_path / "mute.mp4", seconds=2.0, size=SMALL, audio=False))

    assert result.audio_codec is None
    assert "no audio stream" in problems_of(result)


def test_wrong_video_codec(tmp_path):
    result = check_video(make_video(tmp_path / "mpeg4.mp4", seconds=2.0, size=SMALL, codec="mpeg4"))

    assert "video codec mpeg4, expected h264" in problems_of(result)


def test_black_picture(tmp_path):
    result = check_video(make_video(tmp_path / "black.mp4", seconds=2.0, size=SMALL, black=True))

    assert result.max_mean_luma == pytest.approx(16.0, abs=1.0)  # limited-range black
    assert "picture is black (max mean luma 16.0 ≤ 20)" in problems_of(result)


def test_silent_audio(tmp_path):
    result = check_video(make_video(tmp_path / "silent.mp4", seconds=2.0, size=SMALL, silent=True))

    assert "audio is silent" in problems_of(result)


def test_wrong_resolution(good_video):
    result = check_video(good_video, expected_resolution="1280x720")

    assert problems_of(result) == "resolution 320x180, expected 1280x720"


def test_audio_shorter_than_video(tmp_path):
    video = make_video(tmp_path / "short-audio.mp4", seconds=3.0, size=SMALL, audio_seconds=2.0)

    assert "video 3.0 s vs audio 2.0 s differ by 33" in problems_of(check_video(video))


def test_reported_duration_mismatch(good_video):
    result = check_video(good_video, reported_seconds=3.0)

    assert problems_of(result) == "video 2.0 s vs reported 3.0 s differ by 33.3% (> 5%)"
    assert check_video(good_video, reported_seconds=2.05).ok  # within tolerance


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("notes.mp4", b"this is text, not a video\n" * 40, "cannot open as MP4"),
        ("empty.mp4", b"", "cannot open: file is empty"),
        ("missing.mp4", None, "cannot open: No such file or directory"),
    ],
)
def test_unopenable_files_are_problems_not_exceptions(tmp_path, name, content, problem):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)

    result = check_video(path, expected_resolution="1280x720", reported_seconds=10.0)

    assert not result.opens
    assert result.frames_decoded == 0
    assert problem in problems_of(result)


def test_malformed_expected_resolution_is_a_caller_error(good_video):
    with pytest.raises(ValueError, match="1280x720"):
        check_video(good_video, expected_resolution="720p")
