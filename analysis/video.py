"""Integrity of one downloaded MP4: does every frame decode, are picture and sound really there.

Pure: reads a local file, never raises for a bad one. Every failure becomes a human-readable
problem string on the returned `VideoIntegrity`.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import av
import numpy as np

EXPECTED_VIDEO_CODEC = "h264"
# Default limits (a profile's thresholds override them): a picture whose brightest sampled frame has
# a mean luma (0..255) at most BLACK_LUMA is black; sound at most SILENT_DBFS RMS is silent.
BLACK_LUMA = 20.0
SILENT_DBFS = -50.0
HASH_CHUNK = 1 << 20
# pixel formats whose plane 0 is the 8-bit luma, readable without conversion
EIGHT_BIT_LUMA = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21", "gray"}


@dataclass(frozen=True)
class VideoIntegrity:
    path: str
    size_bytes: int
    sha256: str
    opens: bool
    video_codec: str | None
    audio_codec: str | None
    width: int | None
    height: int | None
    fps: float | None
    frames_decoded: int
    decode_errors: int
    video_seconds: float | None
    audio_seconds: float | None
    max_mean_luma: float | None  # 0..255, max over ~1 sampled frame per second of the frame's mean Y
    audio_rms_dbfs: float | None  # -inf for digital silence
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_row(self) -> dict:
        """Flat plain values for a table row (polars/pandas)."""
        row = asdict(self)
        row["problems"] = "; ".join(self.problems)
        row["ok"] = self.ok
        return row


def sha256_file(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_video(
    path,
    *,
    expected_resolution: str | None = None,
    reported_seconds: float | None = None,
    duration_tolerance: float = 0.05,
    black_luma: float = BLACK_LUMA,
    silent_dbfs: float = SILENT_DBFS,
    stop_reason: Callable[[], str | None] | None = None,
) -> VideoIntegrity:
    """Decode every packet of the MP4 at `path` and list what is wrong with it.

    `expected_resolution` is "WIDTHxHEIGHT"; `reported_seconds` is the duration the service claimed.
    Durations must agree within `duration_tolerance` (a fraction of the longer one). `stop_reason`, asked
    between packets, ends the decoding early when it answers why (a time bound, a stop request): a problem.
    """
    expected_size = parse_resolution(expected_resolution) if expected_resolution else None
    path = os.fspath(path)
    try:
        size_bytes = os.path.getsize(path)
        sha256 = sha256_file(path)
    except OSError as exc:
        return _unopened(path, 0, "", f"cannot open: {exc.strerror or exc}")
    if size_bytes == 0:
        return _unopened(path, 0, sha256, "cannot open: file is empty")
    try:
        container = av.open(path, format="mp4", metadata_errors="replace")
    except av.FFmpegError as exc:
        why = "not an MP4, or its index is missing as in a cut-off download"
        return _unopened(path, size_bytes, sha256, f"cannot open as MP4: {exc.strerror} ({why})")
    with container:
        video = container.streams.video[0] if container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        fps = _fps(video)
        decoded = _decode_all(container, video, audio, fps, stop_reason)
        video_context = video.codec_context if video is not None else None
        result = VideoIntegrity(
            path=path,
            size_bytes=size_bytes,
            sha256=sha256,
            opens=True,
            video_codec=_codec_name(video),
            audio_codec=_codec_name(audio),
            width=video_context.width if video_context else None,
            height=video_context.height if video_context else None,
            fps=fps,
            frames_decoded=decoded.frames,
            decode_errors=decoded.video_errors + decoded.audio_errors,
            video_seconds=decoded.video_seconds(),
            audio_seconds=decoded.audio_seconds() if audio is not None else None,
            max_mean_luma=decoded.max_mean_luma,
            audio_rms_dbfs=decoded.audio_rms_dbfs(),
            problems=(),
        )
        problems = _problems(
            result,
            decoded,
            declared_frames=video.frames if video is not None else 0,
            declared_seconds=_declared_seconds(container, video),
            expected_size=expected_size,
            reported_seconds=reported_seconds,
            tolerance=duration_tolerance,
            black_luma=black_luma,
            silent_dbfs=silent_dbfs,
        )
    return replace(result, problems=tuple(problems))


class _Decoded:
    """What decoding every packet found; picture and sound levels are sampled on the way."""

    def __init__(self, luma_every: int):
        self.luma_every = luma_every  # frames between luma samples, ~1 per second
        self.frames = 0
        self.video_errors = 0  # packets the decoder rejected, plus frames it flagged corrupt
        self.audio_errors = 0
        self.first_time: float | None = None
        self.end_time: float | None = None
        self.max_mean_luma: float | None = None
        self.audio_samples = 0
        self.sample_rate = 0
        self.sum_squares = 0.0
        self.sample_values = 0  # samples x channels, the RMS denominator
        self.read_error: str | None = None

    def add_video(self, frame: av.VideoFrame) -> None:
        if frame.is_corrupt:
            self.video_errors += 1
        if frame.time is not None:
            if self.first_time is None:
                self.first_time = frame.time
            length = float(frame.duration * frame.time_base) if frame.duration else 0.0
            self.end_time = max(self.end_time or 0.0, frame.time + length)
        if self.frames % self.luma_every == 0:
            luma = _mean_luma(frame)
            self.max_mean_luma = luma if self.max_mean_luma is None else max(self.max_mean_luma, luma)
        self.frames += 1

    def count_error(self, is_video: bool) -> None:
        if is_video:
            self.video_errors += 1
        else:
            self.audio_errors += 1

    def add_audio(self, frame: av.AudioFrame) -> None:
        samples = _full_scale(frame.to_ndarray())
        self.sum_squares += float(np.square(samples, dtype=np.float64).sum())
        self.sample_values += samples.size
        self.audio_samples += frame.samples
        self.sample_rate = frame.sample_rate

    def video_seconds(self) -> float | None:
        if self.first_time is None:
            return None
        return self.end_time - self.first_time

    def audio_seconds(self) -> float:
        return self.audio_samples / self.sample_rate if self.sample_rate else 0.0

    def audio_rms_dbfs(self) -> float | None:
        if not self.sample_values:
            return None
        mean_square = self.sum_squares / self.sample_values
        return 10 * math.log10(mean_square) if mean_square > 0 else -math.inf


def _decode_all(container, video, audio, fps: float | None, stop_reason: Callable[[], str | None] | None) -> _Decoded:
    decoded = _Decoded(luma_every=max(1, round(fps or 1)))
    # a stream with no decoder in this FFmpeg build has no codec context: nothing to decode
    streams = [stream for stream in (video, audio) if stream is not None and stream.codec_context]
    if video is not None:
        video.thread_type = "AUTO"
    try:
        # demux yields a final empty packet per stream, whose decode flushes the delayed frames
        for packet in container.demux(streams):
            if stop_reason is not None and (why := stop_reason()):
                decoded.read_error = why
                break
            is_video = packet.stream.type == "video"
            try:
                frames = packet.decode()
            except av.FFmpegError:
                decoded.count_error(is_video)
                continue
            add = decoded.add_video if is_video else decoded.add_audio
            for frame in frames:
                add(frame)
    except av.FFmpegError as exc:
        decoded.read_error = exc.strerror or str(exc)
    return decoded


def _mean_luma(frame: av.VideoFrame) -> float:
    if frame.format.name not in EIGHT_BIT_LUMA:
        frame = frame.reformat(format="gray")
    plane = frame.planes[0]
    # rows are padded to line_size bytes: view them, then drop the padding
    rows = np.frombuffer(plane, np.uint8, count=plane.line_size * plane.height)
    return float(rows.reshape(plane.height, plane.line_size)[:, : plane.width].mean())


def _full_scale(samples: np.ndarray) -> np.ndarray:
    """Samples as floats where ±1.0 is full scale (AAC decodes to float already)."""
    if samples.dtype.kind == "f":
        return samples
    info = np.iinfo(samples.dtype)
    half_range = (int(info.max) - int(info.min) + 1) / 2
    return (samples.astype(np.float64) - (info.min + half_range)) / half_range


def _problems(
    result: VideoIntegrity,
    decoded: _Decoded,
    *,
    declared_frames: int,
    declared_seconds: float | None,
    expected_size: tuple[int, int] | None,
    reported_seconds: float | None,
    tolerance: float,
    black_luma: float,
    silent_dbfs: float,
) -> list[str]:
    problems = []
    if result.video_codec is None:
        problems.append("no video stream")
    elif result.video_codec != EXPECTED_VIDEO_CODEC:
        problems.append(f"video codec {result.video_codec}, expected {EXPECTED_VIDEO_CODEC}")
    if result.audio_codec is None:
        problems.append("no audio stream")
    if expected_size and (result.width, result.height) != expected_size:
        expected = "x".join(map(str, expected_size))
        problems.append(f"resolution {result.width}x{result.height}, expected {expected}")

    if decoded.video_errors:
        problems.append(f"{_count(decoded.video_errors, 'video frame')} failed to decode")
    if decoded.audio_errors:
        problems.append(f"{_count(decoded.audio_errors, 'audio packet')} failed to decode")
    if decoded.read_error:
        stopped_after = _count(result.frames_decoded, "video frame")
        problems.append(f"reading stopped after {stopped_after}: {decoded.read_error}")
    if result.video_codec is not None:
        problems += _missing_video(result, declared_frames, declared_seconds, tolerance)
    if result.audio_codec is not None and not decoded.audio_samples:
        problems.append("no audio samples decoded")

    video, audio = result.video_seconds, result.audio_seconds
    if video and audio:
        problems += _disagreement("video", video, "audio", audio, tolerance)
    if video and reported_seconds is not None:
        problems += _disagreement("video", video, "reported", reported_seconds, tolerance)

    if result.max_mean_luma is not None and result.max_mean_luma <= black_luma:
        problems.append(f"picture is black (max mean luma {result.max_mean_luma:.1f} ≤ {black_luma:g})")
    if result.audio_rms_dbfs is not None and result.audio_rms_dbfs <= silent_dbfs:
        problems.append(f"audio is silent ({result.audio_rms_dbfs:.1f} dBFS ≤ {silent_dbfs:g})")
    return problems


def _missing_video(result, declared_frames, declared_seconds, tolerance) -> list[str]:
    """A cut-off file that still opens (index first) decodes fewer frames than its index declares."""
    if not result.frames_decoded:
        return ["no video frames decoded"]
    if declared_frames:
        if result.frames_decoded < declared_frames:
            decoded = f"decoded {result.frames_decoded} of {declared_frames} video frames"
            return [f"{decoded} (file cut off or corrupt)"]
        return []
    seconds = result.video_seconds
    if declared_seconds and seconds is not None and seconds < declared_seconds * (1 - tolerance):
        return [
            f"video decodes to {seconds:.1f} s of the {declared_seconds:.1f} s declared "
            "(file cut off or corrupt)"
        ]
    return []


def _disagreement(name: str, seconds: float, other_name: str, other_seconds: float, tolerance: float):
    difference = abs(seconds - other_seconds) / max(seconds, other_seconds)
    if difference <= tolerance:
        return []
    return [
        f"{name} {seconds:.1f} s vs {other_name} {other_seconds:.1f} s differ by "
        f"{difference * 100:.3g}% (> {tolerance * 100:g}%)"
    ]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _unopened(path: str, size_bytes: int, sha256: str, problem: str) -> VideoIntegrity:
    return VideoIntegrity(
        path=path, size_bytes=size_bytes, sha256=sha256, opens=False,
        video_codec=None, audio_codec=None, width=None, height=None, fps=None,
        frames_decoded=0, decode_errors=0, video_seconds=None, audio_seconds=None,
        max_mean_luma=None, audio_rms_dbfs=None, problems=(problem,),
    )


def parse_resolution(text: str) -> tuple[int, int]:
    """`"1280x720"` → (1280, 720); anything else is a ValueError."""
    width, sep, height = str(text).lower().partition("x")
    if not (sep and width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
        raise ValueError(f"a resolution looks like 1280x720, got {text!r}")
    return int(width), int(height)


def _codec_name(stream) -> str | None:
    if stream is None:
        return None
    return stream.codec_context.name if stream.codec_context else f"unknown ({stream.codec_tag})"


def _fps(video) -> float | None:
    rate = (video.average_rate or video.guessed_rate) if video is not None else None
    return float(rate) if rate else None


def _declared_seconds(container, video) -> float | None:
    if video is not None and video.duration and video.time_base:
        return float(video.duration * video.time_base)
    if container.duration:
        return container.duration / av.time_base
    return None
