"""Command line → Settings: everything the server needs to know, read once at start."""

from __future__ import annotations

import argparse
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from stack.serve import service_parser

UPLOADING_SUFFIX = ".part"  # an upload still arriving; renamed to its real extension once accepted


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    redis_url: str
    tts_url: str
    llm_url: str
    llm_model: str
    data_dir: Path
    max_concurrent_jobs: int = 2
    max_upload_mb: int = 50
    fps: int = 24
    llm_timeout: float = 180.0
    tts_timeout: float = 60.0

    def upload_path(self, job_id: str, extension: str) -> Path:
        return self.data_dir / "uploads" / f"{job_id}{extension}"

    def text_path(self, job_id: str) -> Path:
        """The text extracted from the upload: what the worker turns into a script."""
        return self.data_dir / "uploads" / f"{job_id}.extracted.txt"

    def video_path(self, job_id: str) -> Path:
        return self.data_dir / "videos" / f"{job_id}.mp4"

    def partial_video_path(self, job_id: str) -> Path:
        """Where ffmpeg writes; renamed to video_path only once complete, so a video is never half there."""
        return self.data_dir / "videos" / f".{job_id}.partial.mp4"

    def work_dir(self, job_id: str) -> Path:
        """Scratch for one job (slides, narration), removed when the job ends."""
        return self.data_dir / "work" / job_id

    def prepare_dirs(self) -> None:
        """Create the folders; remove what a stopped server left half-done (uploads, scratch, videos)."""
        for name in ("uploads", "videos", "work"):
            (self.data_dir / name).mkdir(parents=True, exist_ok=True)
        for folder in (self.data_dir / "work").iterdir():
            shutil.rmtree(folder, ignore_errors=True)
        leftovers = [self.upload_path("*", UPLOADING_SUFFIX), self.partial_video_path("*")]
        for pattern in leftovers:
            for path in pattern.parent.glob(pattern.name):
                path.unlink(missing_ok=True)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = service_parser("Text-to-video API server: upload a document, get back an MP4 narrated scene by scene.")
    parser.prog = "python -m stack.server"
    parser.add_argument("--redis-url", required=True, help="job state and queue, e.g. redis://127.0.0.1:6379/0")
    parser.add_argument("--tts-url", required=True, help="Chatterbox-style TTS service, e.g. http://127.0.0.1:4123")
    parser.add_argument("--llm-url", required=True, help="Ollama-style LLM service, e.g. http://127.0.0.1:11434")
    parser.add_argument("--llm-model", required=True, help="model name passed to the LLM's /api/chat")
    parser.add_argument("--data-dir", type=Path, required=True, help="uploads, videos and scratch files go here")
    parser.add_argument("--max-concurrent-jobs", type=_positive_int,
                        default=os.environ.get("MAX_CONCURRENT_JOBS", "2"), metavar="N",
                        help="jobs processed at once, the rest wait queued (default: $MAX_CONCURRENT_JOBS, else 2)")
    parser.add_argument("--max-upload-mb", type=_positive_int, default=50, metavar="MIB",
                        help="largest accepted upload in MiB (default 50)")
    parser.add_argument("--fps", type=_positive_int, default=24, help="frame rate of the videos (default 24)")
    parser.add_argument("--llm-timeout", type=_positive_float, default=180.0, metavar="SECONDS",
                        help="longest wait for one LLM reply (default 180)")
    parser.add_argument("--tts-timeout", type=_positive_float, default=60.0, metavar="SECONDS",
                        help="longest wait for one TTS reply (default 60)")
    return parser


def parse_settings(argv: list[str] | None = None) -> Settings:
    args = build_parser().parse_args(argv)
    return Settings(
        host=args.host,
        port=args.port,
        redis_url=args.redis_url,
        tts_url=args.tts_url.rstrip("/"),
        llm_url=args.llm_url.rstrip("/"),
        llm_model=args.llm_model,
        data_dir=args.data_dir.resolve(),
        max_concurrent_jobs=args.max_concurrent_jobs,
        max_upload_mb=args.max_upload_mb,
        fps=args.fps,
        llm_timeout=args.llm_timeout,
        tts_timeout=args.tts_timeout,
    )
