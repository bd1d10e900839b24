"""Make real MP4 files for tests: solid-colour scenes with a sine tone, encoded with PyAV."""

import heapq
import itertools
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

SCENE_COLORS = ((200, 60, 60), (60, 160, 220), (240, 200, 80))
SAMPLE_RATE = 48_000
TONE_HZ = 440.0
AUDIO_CHUNK = 1024  # samples per AAC frame


def make_video(
    path,
    *,
    seconds: float = 3.0,
    fps: int = 24,
    size: tuple[int, int] = (1280, 720),
    audio: bool = True,
    audio_seconds: float | None = None,
    black: bool = False,
    silent: bool = False,
    codec: str = "libx264",
    scene_colors: tuple[tuple[int, int, int], ...] = SCENE_COLORS,
    faststart: bool = False,
) -> Path:
    """Write an MP4 of `seconds` of video, one solid RGB colour per equal-length scene, and
    `audio_seconds` (default: `seconds`) of AAC tone. `faststart` puts the index (moov) first,
    as web-ready encoders do; otherwise it is written last."""
    path = Path(path)
    colors = ((0, 0, 0),) if black else scene_colors
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", format="mp4", options=options) as container:
        video = container.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        if codec == "libx264":
            video.options = {"preset": "ultrafast"}  # test videos need no encoder effort
        streams = [(video, _scene_frames(seconds, fps, size, colors))]
        if audio:
            sound = container.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
            tone_seconds = seconds if audio_seconds is None else audio_seconds
            streams.append((sound, _tone_frames(tone_seconds, silent)))

        # interleave by time, as real muxers do, so a truncated copy loses both streams' ends
        timed = [zip(frames, itertools.repeat(stream)) for stream, frames in streams]
        for frame, stream in heapq.merge(*timed, key=lambda item: item[0].time):
            container.mux(stream.encode(frame))
        for stream, _ in streams:
            container.mux(stream.encode(None))
    return path


def _scene_frames(seconds, fps, size, colors):
    width, height = size
    scenes = []
    for rgb in colors:
        pixels = np.empty((height, width, 3), np.uint8)
        pixels[:] = rgb
        scenes.append(av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(format="yuv420p"))
    n_frames = round(seconds * fps)
    for i in range(n_frames):
        # reusing one frame per scene is safe: each is encoded before the next is drawn
        frame = scenes[i * len(scenes) // n_frames]
        frame.pts, frame.time_base = i, Fraction(1, fps)
        yield frame


def _tone_frames(seconds, silent):
    total = round(seconds * SAMPLE_RATE)
    for start in range(0, total, AUDIO_CHUNK):
        t = np.arange(start, min(start + AUDIO_CHUNK, total)) / SAMPLE_RATE
        wave = np.zeros_like(t) if silent else 0.5 * np.sin(2 * np.pi * TONE_HZ * t)
        frame = av.AudioFrame.from_ndarray(wave.astype(np.float32)[None, :], format="fltp", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = SAMPLE_RATE, start, Fraction(1, SAMPLE_RATE)
        yield frame


def truncate(path, fraction: float) -> Path:
    """Write the first `fraction` of the file's bytes beside it as `<stem>-truncated<suffix>`,
    like an interrupted download, and return that path."""
    path = Path(path)
    data = path.read_bytes()
    copy = path.with_name(f"{path.stem}-truncated{path.suffix}")
    copy.write_bytes(data[: int(len(data) * fraction)])
    return copy
