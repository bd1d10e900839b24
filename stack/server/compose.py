"""Scene slides + scene narration → one H.264/AAC MP4, each slide shown exactly while its scene is spoken."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import wave
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import av

from stack.binaries import ffmpeg
from stack.children import die_with_parent

AUDIO_BITRATE = "96k"
# The encode is bounded by a fixed allowance plus one second per second of video: far above
# what ffmpeg needs on a loaded 2-core machine (about 25x faster than real time), yet finite.
ENCODE_BASE_TIMEOUT_S = 60.0
PROGRESS_STEP = 0.04
# The MP4 may end up to a frame or an AAC packet shorter than the narration; more is a cut encode.
DURATION_TOLERANCE_S = 0.25


class ComposeError(RuntimeError):
    """Audio that cannot be joined, or ffmpeg failing or timing out."""


@dataclass(frozen=True)
class Video:
    duration_seconds: float
    size_bytes: int


def join_wavs(wavs: list[bytes]) -> tuple[bytes, list[float]]:
    """One WAV holding `wavs` back to back, and the duration in seconds of each part."""
    if not wavs:
        raise ComposeError("no audio to join")
    params, frames, durations = None, [], []
    for number, data in enumerate(wavs, start=1):
        try:
            with wave.open(io.BytesIO(data)) as part:
                shape = (part.getnchannels(), part.getsampwidth(), part.getframerate())
                chunk = part.readframes(part.getnframes())
        except (wave.Error, EOFError) as exc:
            raise ComposeError(f"audio part {number} is not a readable WAV: {exc}") from exc
        if params is None:
            params = shape
        elif shape != params:
            raise ComposeError(f"audio part {number} has format {shape} (channels, sample width, rate), "
                               f"part 1 has {params}")
        frames.append(chunk)
        durations.append(len(chunk) / (shape[0] * shape[1] * shape[2]))
    out = io.BytesIO()
    with wave.open(out, "wb") as joined:
        joined.setnchannels(params[0])
        joined.setsampwidth(params[1])
        joined.setframerate(params[2])
        joined.writeframes(b"".join(frames))
    return out.getvalue(), durations


def scene_frame_counts(durations: list[float], fps: int) -> list[int]:
    """Frames per scene, cut at the frame nearest each scene's end so that rounding never accumulates."""
    counts, shown, elapsed = [], 0, 0.0
    for duration in durations:
        elapsed += duration
        frames = max(1, round(elapsed * fps) - shown)
        counts.append(frames)
        shown += frames
    return counts


def ffmpeg_command(slides: list[Path], durations: list[float], audio: Path, output: Path, fps: int) -> list[str]:
    """One ffmpeg run: each slide looped for its scene's length, concatenated, muxed with the narration."""
    inputs, chains = [], []
    for index, (slide, frames) in enumerate(zip(slides, scene_frame_counts(durations, fps), strict=True)):
        # 1 fps in, duplicated by the fps filter: the PNG is decoded once a second, not once a frame.
        inputs += ["-loop", "1", "-framerate", "1", "-t", f"{frames / fps + 1:.3f}", "-i", str(slide)]
        chains.append(f"[{index}:v]fps={fps},trim=end_frame={frames},setpts=PTS-STARTPTS[s{index}]")
    joined = "".join(f"[s{index}]" for index in range(len(slides)))
    graph = ";".join([*chains, f"{joined}concat=n={len(slides)}:v=1:a=0,format=yuv420p[video]"])
    return [
        ffmpeg(), "-hide_banner", "-nostdin", "-loglevel", "error", "-nostats", "-progress", "pipe:1", "-y",
        *inputs, "-i", str(audio),
        "-filter_complex", graph, "-map", "[video]", "-map", f"{len(slides)}:a",
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "stillimage", "-pix_fmt", "yuv420p", "-r", str(fps),
        # The fast AAC coder halves the audio encode, which otherwise costs as much as the video.
        "-c:a", "aac", "-aac_coder", "fast", "-b:a", AUDIO_BITRATE,
        "-movflags", "+faststart", "-f", "mp4", str(output),
    ]


def _prepare_encoder() -> None:
    """Runs in the ffmpeg child before exec."""
    os.nice(10)  # the encode yields the CPU to the API process, which must stay fast
    die_with_parent(signal.SIGKILL)  # no orphaned encode when the server is killed outright


async def run_ffmpeg(command: list[str], seconds: float, on_progress: Callable[[float], Awaitable[None]]) -> None:
    """Run the encode, reporting the fraction done; killed on timeout or when the caller is cancelled."""
    # A session of its own: a stop signal sent to the server's process group (Ctrl-C, the launcher)
    # must not reach ffmpeg, which may then exit 0 leaving a truncated file; the server stops it
    # itself when the job is cancelled or the server shuts down.
    process = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, preexec_fn=_prepare_encoder, start_new_session=True,
    )
    errors = asyncio.create_task(process.stderr.read())
    timeout = ENCODE_BASE_TIMEOUT_S + seconds
    try:
        async with asyncio.timeout(timeout):
            reported = 0.0
            async for line in process.stdout:
                key, _, value = line.decode(errors="replace").strip().partition("=")
                if key == "out_time_us" and value.isdigit():
                    done = min(1.0, int(value) / 1e6 / max(seconds, 0.001))
                    if done - reported >= PROGRESS_STEP:
                        reported = done
                        await on_progress(done)
            code = await process.wait()
            stderr = await errors
    except TimeoutError as exc:
        raise ComposeError(f"compose: ffmpeg did not finish within {timeout:.0f} s") from exc
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        errors.cancel()
    if code != 0:
        detail = " ".join(stderr.decode(errors="replace").split())[-300:]
        raise ComposeError(f"compose: ffmpeg exited with code {code}: {detail}")


def probe_duration(path: Path) -> float:
    """Seconds of a finished MP4 holding video and audio, read from its container (PyAV)."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video or not container.streams.audio or container.duration is None:
                raise ComposeError("compose: ffmpeg wrote a file without both video and audio")
            return container.duration / av.time_base
    except (av.FFmpegError, OSError) as exc:
        raise ComposeError(f"compose: ffmpeg wrote no readable video ({type(exc).__name__}: {exc})") from exc


async def compose_video(slides: list[Path], wavs: list[bytes], work_dir: Path, output: Path, partial: Path,
                        fps: int, on_progress: Callable[[float], Awaitable[None]]) -> Video:
    """Encode into `partial` and rename it to `output` once complete (removed on any failure)."""
    audio, durations = await asyncio.to_thread(join_wavs, wavs)
    audio_path = work_dir / "narration.wav"
    await asyncio.to_thread(audio_path.write_bytes, audio)
    expected = sum(durations)
    try:
        await run_ffmpeg(ffmpeg_command(slides, durations, audio_path, partial, fps), expected, on_progress)
        duration = await asyncio.to_thread(probe_duration, partial)
        if duration < expected - DURATION_TOLERANCE_S:
            raise ComposeError(f"compose: ffmpeg stopped early: the video lasts {duration:.1f} s of {expected:.1f} s")
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)
    return Video(duration_seconds=round(duration, 3), size_bytes=output.stat().st_size)
