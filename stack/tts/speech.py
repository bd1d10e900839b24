"""Speech from text with eSpeak NG, as WAV bytes, plus MP3 encoding of them.

Two engines speak the same way: the `espeak-ng` program when it is on PATH (what the operator
installed), otherwise the shared library from the `espeakng-loader` wheel driven through ctypes.
The engine is chosen once per process; `synthesize` hides which one it is.
"""

from __future__ import annotations

import ctypes
import io
import subprocess
import threading
import time
import wave

import av

from stack.binaries import MissingProgram, espeak_library, espeak_program

VOICE = "en-us"
NORMAL_RATE_WPM = 175  # eSpeak's own default speaking rate, our speed 1.0
SYNTHESIS_TIMEOUT_SECONDS = 60.0  # eSpeak runs hundreds of times faster than real time; this is a hang guard
MP3_BIT_RATE = 64_000  # ample for 22 kHz mono speech


class SpeechError(RuntimeError):
    """eSpeak NG could not turn the text into audio."""


def synthesize(text: str, speed: float) -> bytes:
    """Speak `text` at `speed` × eSpeak's normal rate; 16-bit mono WAV at eSpeak's native sample rate."""
    # A NUL would end the C string early; unencodable code points become '?' instead of an exception.
    utf8 = text.replace("\0", " ").encode("utf-8", errors="replace")
    pcm, sample_rate = engine().speak(utf8, round(NORMAL_RATE_WPM * speed))
    if not pcm:
        raise SpeechError("eSpeak produced no audio")
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
    return out.getvalue()


def encode_mp3(wav: bytes) -> bytes:
    """Encode 16-bit mono WAV bytes (what `synthesize` returns) as MP3 with the LAME encoder inside PyAV."""
    with wave.open(io.BytesIO(wav)) as source:
        if (source.getnchannels(), source.getsampwidth()) != (1, 2):
            raise ValueError("encode_mp3 expects 16-bit mono WAV")
        sample_rate, pcm = source.getframerate(), source.readframes(source.getnframes())
    frame = av.AudioFrame(format="s16", layout="mono", samples=len(pcm) // 2)
    frame.planes[0].update(pcm)
    frame.sample_rate = sample_rate
    out = io.BytesIO()
    try:
        with av.open(out, "w", format="mp3") as sink:
            stream = sink.add_stream("libmp3lame", rate=sample_rate, layout="mono")
            stream.bit_rate = MP3_BIT_RATE
            sink.mux(stream.encode(frame))
            sink.mux(stream.encode(None))
    except av.FFmpegError as exc:
        raise SpeechError(f"MP3 encoding failed: {exc}") from exc
    return out.getvalue()


class ProgramEngine:
    """The `espeak-ng` program, one process per text, WAV on stdout."""

    source = "PATH"

    def __init__(self, program: str) -> None:
        self.program = program

    def speak(self, utf8: bytes, rate_wpm: int) -> tuple[bytes, int]:
        # Text goes through stdin so that a leading '-' is never taken for an option.
        command = [self.program, "--stdout", "--stdin", "-b", "1", "-v", VOICE, "-s", str(rate_wpm)]
        try:
            done = subprocess.run(command, input=utf8, capture_output=True, timeout=SYNTHESIS_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired as exc:
            raise SpeechError(f"espeak-ng took longer than {SYNTHESIS_TIMEOUT_SECONDS:.0f} s") from exc
        if done.returncode != 0:
            reason = done.stderr.decode(errors="replace").strip()[-300:]
            raise SpeechError(f"espeak-ng exited with {done.returncode}: {reason}")
        try:
            # On a pipe espeak-ng cannot go back to fill in the sizes; wave reads up to the end anyway.
            with wave.open(io.BytesIO(done.stdout)) as wav:
                return wav.readframes(wav.getnframes()), wav.getframerate()
        except (wave.Error, EOFError) as exc:
            raise SpeechError(f"espeak-ng wrote no readable WAV: {exc}") from exc


_AUDIO_OUTPUT_SYNCHRONOUS = 2  # espeak_AUDIO_OUTPUT: samples go to our callback, espeak_Synth blocks
_INITIALIZE_DONT_EXIT = 0x8000  # report a bad data path instead of calling exit()
_BUFFER_MILLISECONDS = 500  # fewer, larger callbacks
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAMETER_RATE = 1
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class LibraryEngine:
    """libespeak-ng in this process. The library keeps global state, so one call at a time."""

    source = "espeakng-loader wheel"

    def __init__(self, library_path: str, data_path: str) -> None:
        self._lib = lib = ctypes.CDLL(library_path)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        self._lock = threading.Lock()
        self._samples = bytearray()
        self._deadline = 0.0
        self.sample_rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MILLISECONDS, data_path.encode(), _INITIALIZE_DONT_EXIT
        )
        if self.sample_rate <= 0:
            raise SpeechError(f"espeak_Initialize failed with data at {data_path}")
        self._callback = _SYNTH_CALLBACK(self._collect)  # held here: the library keeps only the raw pointer
        lib.espeak_SetSynthCallback(self._callback)
        self._check("espeak_SetVoiceByName", lib.espeak_SetVoiceByName(VOICE.encode()))

    def _collect(self, samples, count: int, _events) -> int:
        if samples and count > 0:
            self._samples += ctypes.string_at(samples, count * 2)
        return int(time.monotonic() > self._deadline)  # non-zero asks eSpeak to abort

    @staticmethod
    def _check(call: str, status: int) -> None:
        if status != 0:
            raise SpeechError(f"{call} returned error {status}")

    def speak(self, utf8: bytes, rate_wpm: int) -> tuple[bytes, int]:
        with self._lock:
            self._samples = bytearray()
            self._deadline = time.monotonic() + SYNTHESIS_TIMEOUT_SECONDS
            self._check("espeak_SetParameter", self._lib.espeak_SetParameter(_PARAMETER_RATE, rate_wpm, 0))
            status = self._lib.espeak_Synth(utf8, len(utf8) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            self._check("espeak_Synth", status)
            self._check("espeak_Synchronize", self._lib.espeak_Synchronize())
            if time.monotonic() > self._deadline:
                raise SpeechError(f"eSpeak took longer than {SYNTHESIS_TIMEOUT_SECONDS:.0f} s")
            return bytes(self._samples), self.sample_rate


_engine: ProgramEngine | LibraryEngine | None = None
_engine_lock = threading.Lock()


def engine() -> ProgramEngine | LibraryEngine:
    """The process's speech engine, created on first use: the program on PATH, else the wheel's library."""
    global _engine
    with _engine_lock:
        if _engine is None:
            program = espeak_program()
            if program:
                _engine = ProgramEngine(program)
            else:
                try:
                    _engine = LibraryEngine(*espeak_library())
                except (MissingProgram, OSError) as exc:
                    raise SpeechError(f"no eSpeak NG available: {exc}") from exc
        return _engine
