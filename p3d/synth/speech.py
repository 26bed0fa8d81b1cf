"""Speech synthesis with exact phoneme timings: espeak-ng through its C library (ctypes).

The synthetic corpora need real speech whose phoneme boundaries are known exactly, so that lip
motion can follow the phonemes (lip readability) with ground-truth timing (temporal
synchronisation). espeak-ng's synthesis callback reports a PHONEME event with the exact output
sample at which each phoneme starts; this module collects those events together with the audio.

Engine: the ``libespeak-ng`` bundled by the pip package ``espeakng-loader`` (with its
``espeak-ng-data``), else Debian's ``libespeak-ng.so.1``. espeak-ng is GPL-3.0-or-later; it is
loaded at run time as a separate library, never vendored.

Determinism: repeated synthesis inside one process drifts slightly (the engine carries internal
state from one utterance to the next), ``espeak_Terminate`` followed by a new ``espeak_Initialize``
hangs, and the engine seeds its noise generator from the clock. So every utterance is synthesised
in a FRESH process with fixed random seeds: :func:`synthesize_many` starts ``workers`` small server
interpreters (``python -c``, so no ``if __name__ == "__main__"`` guard is needed in user scripts);
each server forks one child per utterance from a state in which espeak-ng was never loaded. The
child returns the raw 22050 Hz int16 samples and the event list; resampling to 16 kHz
(``scipy.signal.resample_poly``, 320/441) and all bookkeeping happen in the parent. Same request,
same bytes, across calls, processes and worker counts (~20-40 ms per short utterance). POSIX only
(``os.fork``).

Times: an event at native sample ``k`` starts at ``k / 22050`` s exactly (no rounding through the
resampled grid). A phoneme ends where the next one starts, the last one at the end of the audio.
Pauses (espeak's ``_``, ``_:``, ``_!`` ...) become the symbol ``"_"``; consecutive pauses are merged,
a leading ``"_"`` covers the audio before the first phoneme, and zero-length events are dropped, so
``Utterance.phonemes`` tiles ``[0, duration]`` with strictly increasing starts.

Phoneme symbols are espeak-ng's own ASCII mnemonics for English, with the stress marks (``'`` and
``,``) removed (kept in ``Utterance.stress``). The en-us inventory met on p3d's word list: consonants
``p b m f v T D t d n s z S Z tS dZ k g N h l r w j`` plus ``t# t2 ? n-`` (flap, variant t, glottal
stop, syllabic n) and ``;`` (a y-glide between vowels, ~40 ms); vowels ``a aa a# A: A@ aI aI@ aI3
aU E e@ eI i i: i@ i@3 I I2 I# 0 O: O2 O@ o@ OI oU u: U U@ V @ @2 @- @L 3 3: r-``. :data:`IPA` maps
them to IPA for display.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import functools
import json
import logging
import math
import os
import queue
import signal
import struct
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from p3d.errors import InputError
from p3d.progress import show_progress

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
"""Output sample rate (Hz) of :func:`synthesize` by default, as the paper's audio encoders use."""

PAUSE = "_"
"""Symbol of a pause (silence) in :attr:`Utterance.phonemes`."""

#: English base voices (espeak-ng ``lang/gmw`` files) usable with Latin-script text. ``en-shaw``
#: (Shavian script) is left out. ``en-gb`` is accepted as an alias of espeak-ng's ``en``.
ENGLISH_VOICES: tuple[str, ...] = (
    "en-us", "en", "en-029", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
    "en-us-nyc",
)
VOICE_ALIASES: Mapping[str, str] = {"en-gb": "en"}

#: Voice variants (``voices/!v`` files) that sound like ordinary adult speakers: the numbered male
#: and female variants and a few named ones that only change pitch and formants. Robot, whisper,
#: croak and novelty variants are left out.
HUMAN_VARIANTS: tuple[str, ...] = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
    "linda", "paul", "robert", "max",
)

#: espeak-ng English phoneme mnemonics -> IPA (display only; unknown symbols pass through).
IPA: Mapping[str, str] = {
    "_": "", "p": "p", "b": "b", "m": "m", "f": "f", "v": "v", "T": "θ", "D": "ð", "t": "t",
    "d": "d", "n": "n", "s": "s", "z": "z", "S": "ʃ", "Z": "ʒ", "tS": "tʃ", "dZ": "dʒ", "k": "k",
    "g": "ɡ", "N": "ŋ", "h": "h", "l": "l", "r": "ɹ", "w": "w", "j": "j", "t#": "ɾ", "?": "ʔ",
    "n-": "n̩", "l-": "l̩", "@": "ə", "3": "ɚ", "3:": "ɜː", "@L": "əl", "a": "æ", "a#": "ɐ",
    "A:": "ɑː", "A@": "ɑːɹ", "aI": "aɪ", "aI@": "aɪə", "aU": "aʊ", "aU@": "aʊə", "E": "ɛ",
    "e@": "eə",
    "eI": "eɪ", "i": "i", "i:": "iː", "i@": "ɪə", "i@3": "ɪɹ", "I": "ɪ", "I#": "ᵻ", "I2": "ɪ",
    "0": "ɒ", "O": "ɔ", "O:": "ɔː", "O@": "ɔːɹ", "o@": "oːɹ", "OI": "ɔɪ", "oU": "oʊ", "u:": "uː",
    "U": "ʊ", "U@": "ʊɹ", "V": "ʌ", "aa": "æ", "t2": "t", "O2": "ɔ", "aI3": "aɪɚ", "@-": "ə",
    "@2": "ə", "r-": "ɚ", ";": "j",
}

_ESPEAK_NATIVE_RATE = 22050
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS = 0x0001
_INIT_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EV_WORD, _EV_SENTENCE, _EV_END, _EV_PHONEME = 1, 2, 5, 7
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_WORDGAP = 1, 2, 3, 7
_RAND_SEED = 1
_DEBIAN_LIBS = ("libespeak-ng.so.1", "/usr/lib/x86_64-linux-gnu/libespeak-ng.so.1",
                "/usr/lib/aarch64-linux-gnu/libespeak-ng.so.1")
_DEBIAN_DATA = ("/usr/lib/x86_64-linux-gnu/espeak-ng-data", "/usr/lib/aarch64-linux-gnu/espeak-ng-data",
                "/usr/share/espeak-ng-data")


class EspeakNotFoundError(RuntimeError):
    """Neither the ``espeakng-loader`` package nor a system ``libespeak-ng.so.1`` is available."""


# --------------------------------------------------------------------------------------------------
# Requests and results
# --------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SpeechRequest:
    """One utterance to synthesise.

    ``rate``: words per minute (espeak-ng accepts 80-450); ``pitch``: base pitch 0-100 (50 normal);
    ``volume``: amplitude 0-200 (100 normal; above ~150 the engine compresses); ``word_gap``: extra
    pause between words in units of 10 ms; ``sr_out``: output sample rate in Hz.
    """

    text: str
    voice: str = "en-us"
    rate: int = 160
    pitch: int = 50
    volume: int = 100
    word_gap: int = 0
    sr_out: int = SAMPLE_RATE

    def __post_init__(self) -> None:
        if not isinstance(self.text, str) or not self.text.strip():
            raise InputError(f"speech text must be a non-empty string, got {self.text!r}")
        if "\0" in self.text:
            raise InputError("speech text must not contain NUL characters")
        for name, lo, hi in (("rate", 80, 450), ("pitch", 0, 100), ("volume", 0, 200),
                             ("word_gap", 0, 1000), ("sr_out", 4000, 192000)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
                raise InputError(f"speech {name} must be an integer in [{lo}, {hi}], got {value!r}")
        object.__setattr__(self, "voice", resolve_voice(self.voice))


@dataclasses.dataclass
class Utterance:
    """Synthesised speech with exact phoneme and word timings.

    ``audio``: float32 (n,) mono in [-1, 1] at ``sample_rate`` Hz.
    ``phonemes``: ``(symbol, start_s, end_s)`` tiling ``[0, duration]``; pauses are ``"_"``.
    ``stress``: per phoneme, 0 (none), 1 (secondary ``,``) or 2 (primary ``'``).
    ``words``: ``(word, start_s, end_s)`` from the word's first phoneme to its last (pauses excluded).
    """

    audio: np.ndarray
    sample_rate: int
    phonemes: list[tuple[str, float, float]]
    words: list[tuple[str, float, float]]
    stress: list[int]
    request: SpeechRequest

    @property
    def duration(self) -> float:
        """Length of the audio in seconds."""
        return len(self.audio) / self.sample_rate

    def frame_phonemes(self, fps: float, n_frames: int | None = None) -> list[str]:
        """Phoneme label per video frame: see :func:`frame_labels`."""
        if n_frames is None:
            n_frames = int(math.floor(self.duration * fps + 1e-9))
        return frame_labels(self.phonemes, fps, n_frames)

    def write_wav(self, path: str | os.PathLike[str]) -> None:
        """Write ``audio`` as 16-bit PCM wav, atomically (byte-identical for identical audio)."""
        import soundfile as sf

        from p3d.atomic import atomic_path

        with atomic_path(path, suffix=".wav") as tmp:
            sf.write(tmp, self.audio, self.sample_rate, subtype="PCM_16", format="WAV")


def frame_labels(phonemes: Sequence[tuple[str, float, float]], fps: float, n_frames: int) -> list[str]:
    """Label of frame ``k`` = the phoneme that contains the frame centre ``(k + 0.5) / fps`` s.

    Frames whose centre lies past the last phoneme get :data:`PAUSE`.
    """
    if isinstance(fps, bool) or not isinstance(fps, (int, float, np.integer, np.floating)) \
            or not (math.isfinite(fps) and fps > 0) or isinstance(n_frames, bool) \
            or not isinstance(n_frames, (int, float, np.integer, np.floating)) or not math.isfinite(n_frames) \
            or int(n_frames) != n_frames or n_frames < 0:
        raise InputError(f"frame_labels: fps must be a finite number > 0 and n_frames a whole number >= 0, "
                         f"got {fps!r}, {n_frames!r}")
    starts = np.array([p[1] for p in phonemes], dtype=np.float64)
    if not np.all(np.isfinite(starts)) or np.any(np.diff(starts) < 0):  # searchsorted needs sorted starts
        raise InputError("frame_labels: phoneme start times must be finite and non-decreasing")
    end = phonemes[-1][2] if phonemes else 0.0
    centres = (np.arange(int(n_frames)) + 0.5) / fps
    idx = np.searchsorted(starts, centres, side="right") - 1
    return [phonemes[i][0] if i >= 0 and c < end else PAUSE for i, c in zip(idx, centres)]


# --------------------------------------------------------------------------------------------------
# Library and voices
# --------------------------------------------------------------------------------------------------

def find_espeak() -> tuple[str, str | None]:
    """Return ``(library_path, data_path)``; ``data_path`` None means the library's default.

    Raises :class:`EspeakNotFoundError` when neither ``espeakng-loader`` nor Debian's
    ``libespeak-ng.so.1`` can be found.
    """
    try:
        import espeakng_loader
    except ImportError:
        espeakng_loader = None
    if espeakng_loader is not None:
        lib_path, data_path = espeakng_loader.get_library_path(), espeakng_loader.get_data_path()
        if Path(lib_path).is_file() and Path(data_path).is_dir():
            return str(lib_path), str(data_path)
    found = ctypes.util.find_library("espeak-ng")
    for candidate in ((found,) if found else ()) + _DEBIAN_LIBS:
        try:
            ctypes.CDLL(candidate)
        except OSError:
            continue
        return candidate, None
    raise EspeakNotFoundError(
        "espeak-ng library not found: install the pip package 'espeakng-loader' "
        "(pip install espeakng-loader) or Debian's 'libespeak-ng1' (apt-get install espeak-ng)")


def _data_dir() -> Path:
    _, data = find_espeak()
    if data is not None:
        return Path(data)
    for candidate in _DEBIAN_DATA:
        if Path(candidate, "phontab").is_file():
            return Path(candidate)
    raise EspeakNotFoundError("espeak-ng-data folder not found next to the system libespeak-ng")


@functools.lru_cache(maxsize=8)
def _available_bases(data: Path) -> frozenset[str]:
    return frozenset(p.name.lower() for p in (data / "lang").rglob("*") if p.is_file())


@functools.lru_cache(maxsize=8)
def _available_variants(data: Path) -> frozenset[str]:
    return frozenset(p.name.lower() for p in (data / "voices" / "!v").glob("*") if p.is_file())


def list_voices(variants: bool = True) -> list[str]:
    """Usable English voice names present in the installed espeak-ng data.

    The base voices of :data:`ENGLISH_VOICES`, then (``variants=True``) every base combined with
    every variant of :data:`HUMAN_VARIANTS` (``"en-us+f3"``), all as :func:`synthesize` accepts
    them. Order is fixed, so an index into this list is a stable speaker identity.
    """
    data = _data_dir()
    bases = [b for b in ENGLISH_VOICES if b in _available_bases(data)]
    out = list(bases)
    if variants:
        have = _available_variants(data)
        out += [f"{b}+{v}" for b in bases for v in HUMAN_VARIANTS if v in have]
    return out


def resolve_voice(voice: str) -> str:
    """Check ``"base[+variant]"`` against the installed data; return it with aliases resolved.

    Raises :class:`InputError` for an unknown base voice or variant (espeak-ng itself silently
    ignores an unknown variant).
    """
    if not isinstance(voice, str) or not voice:
        raise InputError(f"voice must be a string like 'en-us' or 'en-us+f3', got {voice!r}")
    base, _, variant = voice.lower().partition("+")
    base = VOICE_ALIASES.get(base, base)
    data = _data_dir()
    if base not in _available_bases(data):
        raise InputError(f"voice {voice!r}: unknown base voice {base!r}; English voices: "
                         f"{', '.join(ENGLISH_VOICES)}")
    if variant and variant not in _available_variants(data):
        raise InputError(f"voice {voice!r}: unknown variant {variant!r}; usable variants: "
                         f"{', '.join(HUMAN_VARIANTS)}")
    return f"{base}+{variant}" if variant else base


# --------------------------------------------------------------------------------------------------
# The child-process side: ctypes binding of espeak-ng (speak_lib.h, API revision 12, 1.52)
# --------------------------------------------------------------------------------------------------

class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """``espeak_EVENT`` of ``speak_lib.h``: 40 bytes on LP64 (checked in the child)."""

    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                   ctypes.POINTER(_Event))

# A raw event: (type, native sample, text position (1-based chars), length, payload) where payload
# is the phoneme mnemonic (str) for PHONEME events and the id number otherwise.
RawEvent = tuple[int, int, int, int, Any]


class _Engine:
    """espeak-ng loaded and initialised in the CURRENT process (only ever a fresh child process)."""

    def __init__(self, lib_path: str, data_path: str | None, voice: str, rate: int = 160,
                 pitch: int = 50, volume: int = 100, word_gap: int = 0) -> None:
        lib = ctypes.CDLL(lib_path)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_uint),
                                     ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.restype = ctypes.c_int
        if ctypes.sizeof(_Event) != (40 if ctypes.sizeof(ctypes.c_void_p) == 8 else 32):
            raise RuntimeError(f"unexpected espeak_EVENT size {ctypes.sizeof(_Event)}")
        self.lib = lib
        self.sample_rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0,
                                                 data_path.encode() if data_path else None,
                                                 _INIT_PHONEME_EVENTS | _INIT_DONT_EXIT)
        if self.sample_rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed ({self.sample_rate}); data path {data_path!r}")
        # The engine's noise sources (breath and roughness of some variants) draw on its own
        # generator, seeded from the clock at start-up, and on libc rand(): fix both (bit-exact).
        if hasattr(lib, "espeak_ng_SetRandSeed"):
            lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
            lib.espeak_ng_SetRandSeed(_RAND_SEED)
        ctypes.CDLL(None).srand(ctypes.c_uint(_RAND_SEED))
        self.chunks: list[bytes] = []
        self.events: list[RawEvent] = []
        self._callback = _SYNTH_CALLBACK(self._on_audio)  # keep the C callback alive
        lib.espeak_SetSynthCallback(self._callback)
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise RuntimeError(f"espeak-ng rejected voice {voice!r}")
        for param, value in ((_PARAM_RATE, rate), (_PARAM_VOLUME, volume), (_PARAM_PITCH, pitch),
                             (_PARAM_WORDGAP, word_gap)):
            if lib.espeak_SetParameter(param, int(value), 0) != 0:
                raise RuntimeError(f"espeak_SetParameter({param}, {value}) failed")

    def _on_audio(self, wav: Any, n: int, ev: Any) -> int:
        if n > 0:
            self.chunks.append(ctypes.string_at(wav, n * 2))
        i = 0
        while ev[i].type != 0:  # espeakEVENT_LIST_TERMINATED
            e = ev[i]
            if e.type == _EV_PHONEME:
                payload: Any = bytes(e.id.string).split(b"\0", 1)[0].decode("utf-8", "replace")
            else:
                payload = int(e.id.number)
            if e.type in (_EV_WORD, _EV_SENTENCE, _EV_END, _EV_PHONEME):
                self.events.append((int(e.type), int(e.sample), int(e.text_position), int(e.length), payload))
            i += 1
        return 0

    def speak(self, text: str) -> tuple[bytes, list[RawEvent]]:
        """Synthesise ``text``: (int16 little-endian PCM at ``sample_rate``, raw events)."""
        self.chunks, self.events = [], []
        buf = text.encode("utf-8") + b"\0"
        err = self.lib.espeak_Synth(buf, len(buf), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if err != 0:
            raise RuntimeError(f"espeak_Synth failed with code {err}")
        self.lib.espeak_Synchronize()
        return b"".join(self.chunks), self.events


def _run_job(job: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """Run one job in this (fresh) process: ``kind`` "synth" (one utterance) or "transcribe"."""
    job = dict(job)
    kind, texts = job.pop("kind"), job.pop("texts")
    engine = _Engine(**job)
    if kind == "synth":
        pcm, events = engine.speak(texts[0])
        return {"sample_rate": engine.sample_rate, "events": events}, pcm
    # "transcribe": the phoneme events of many short texts in ONE process. Audio is discarded, so
    # the in-process drift of repeated synthesis does not matter here.
    out = []
    for text in texts:
        _, events = engine.speak(text)
        out.append([str(e[4]) for e in events if e[0] == _EV_PHONEME])
    return {"phonemes": out}, b""


_CHILD_TIMEOUT_S = 120
"""A child that has not finished its utterance after this many seconds is killed (SIGALRM)."""


def _serve() -> None:
    """Server loop, run in a fresh interpreter by :class:`_Server`; never returns normally.

    Reads one JSON job per line on stdin; for each it forks a child (this process is single-threaded
    and never loads espeak-ng itself, so every child starts from a pristine library state), the
    child synthesises and sends a frame back through a pipe, exits, and the frame is forwarded to
    stdout. A child that dies without a frame yields an error frame.
    """
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    for line in stdin:
        job = json.loads(line)
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child
            os.close(read_fd)
            code = 0
            try:
                signal.alarm(_CHILD_TIMEOUT_S)
                frame = _frame(*_run_job(job))
            except BaseException as exc:  # reported to the parent, which raises
                frame, code = _frame({"error": f"{type(exc).__name__}: {exc}"}, b""), 1
            with os.fdopen(write_fd, "wb") as fh:
                fh.write(frame)
            os._exit(code)
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as fh:
            data = fh.read()
        _, status = os.waitpid(pid, 0)
        if not data:
            data = _frame({"error": f"espeak-ng child process died (wait status {status})"}, b"")
        stdout.write(data)
        stdout.flush()


def _frame(meta: dict[str, Any], pcm: bytes) -> bytes:
    head = json.dumps(meta).encode()
    return struct.pack("<QQ", len(head), len(pcm)) + head + pcm


class _Server:
    """A fresh ``python -c`` process running :func:`_serve` (one per worker)."""

    def __init__(self) -> None:
        import p3d

        env = dict(os.environ)
        root = str(Path(p3d.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join([root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from p3d.synth.speech import _serve; _serve()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)

    def run(self, job: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(json.dumps(job).encode() + b"\n")
            self.proc.stdin.flush()
            sizes = self.proc.stdout.read(16)
            if len(sizes) != 16:
                raise EOFError
            n_head, n_pcm = struct.unpack("<QQ", sizes)
            meta = json.loads(self.proc.stdout.read(n_head))
            pcm = self.proc.stdout.read(n_pcm)
        except (BrokenPipeError, EOFError, ValueError):
            raise RuntimeError(f"espeak-ng server process failed (exit code {self.proc.poll()})") from None
        if "error" in meta:
            raise RuntimeError(f"espeak-ng failed on {job['texts'][0]!r} (voice {job['voice']!r}): "
                               f"{meta['error']}")
        return meta, pcm

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _as_request(item: SpeechRequest | Mapping[str, Any] | str) -> SpeechRequest:
    if isinstance(item, SpeechRequest):
        return item
    if isinstance(item, str):
        return SpeechRequest(item)
    if isinstance(item, Mapping):
        try:
            return SpeechRequest(**item)
        except TypeError as exc:
            raise InputError(f"bad speech request {dict(item)!r}: {exc}") from None
    raise InputError(f"speech request must be a SpeechRequest, a dict or a string, got {type(item).__name__}")


def synthesize(text: str, *, voice: str = "en-us", rate: int = 160, pitch: int = 50, volume: int = 100,
               word_gap: int = 0, sr_out: int = SAMPLE_RATE) -> Utterance:
    """Synthesise one utterance in a fresh child process (bit-exact across runs).

    Returns an :class:`Utterance` (float32 audio at ``sr_out`` Hz, exact phoneme and word times).
    Raises :class:`InputError` for bad arguments, :class:`EspeakNotFoundError` without espeak-ng.
    """
    req = SpeechRequest(text, voice=voice, rate=rate, pitch=pitch, volume=volume, word_gap=word_gap,
                        sr_out=sr_out)
    return synthesize_many([req], workers=1, progress=False)[0]


def synthesize_many(requests: Iterable[SpeechRequest | Mapping[str, Any] | str], workers: int = 1,
                    progress: bool = False) -> list[Utterance]:
    """Synthesise many utterances, each in its own fresh process, ``workers`` at a time.

    ``requests``: :class:`SpeechRequest` objects, dicts of its fields, or plain texts (defaults).
    Returns the utterances in request order (all in memory: see :func:`iter_synthesize`).
    """
    return list(iter_synthesize(requests, workers=workers, progress=progress))


def iter_synthesize(requests: Iterable[SpeechRequest | Mapping[str, Any] | str], workers: int = 1,
                    progress: bool = False) -> Iterator[Utterance]:
    """Like :func:`synthesize_many`, but yields each utterance, in request order, when it is ready."""
    reqs = [_as_request(r) for r in requests]
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError(f"workers must be a positive integer, got {workers!r}")
    if not reqs:
        return
    lib_path, data_path = find_espeak()
    jobs = [dict(kind="synth", texts=[r.text], voice=r.voice, rate=r.rate, pitch=r.pitch,
                 volume=r.volume, word_gap=r.word_gap, lib_path=lib_path, data_path=data_path)
            for r in reqs]
    n_servers = min(workers, len(jobs))
    log.debug("synthesising %d utterances with %d espeak-ng server(s), %s", len(jobs), n_servers, lib_path)
    idle: queue.Queue[_Server] = queue.Queue()
    servers: list[_Server] = []

    def run(job: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        server = idle.get()
        try:
            return server.run(job)
        finally:
            idle.put(server)

    pool = ThreadPoolExecutor(max_workers=n_servers)
    try:
        for _ in range(n_servers):
            servers.append(_Server())
            idle.put(servers[-1])
        results: Iterable[tuple[dict[str, Any], bytes]] = pool.map(run, jobs)
        if show_progress(progress):
            from tqdm import tqdm

            results = tqdm(results, total=len(jobs), desc="speech", unit="utt")
        for req, (meta, pcm) in zip(reqs, results):
            yield _build_utterance(req, pcm, int(meta["sample_rate"]), [tuple(e) for e in meta["events"]])
    finally:  # also when the caller stops early: drop queued jobs, then stop the servers
        pool.shutdown(wait=True, cancel_futures=True)
        for server in servers:
            server.close()


def transcribe(words: Sequence[str], voice: str = "en-us") -> list[list[str]]:
    """espeak-ng phoneme symbols of each text in ``words`` (stress marks removed, pauses dropped).

    The symbols are those of the PHONEME events that :func:`synthesize` reports, for each text
    spoken on its own. All texts run in one fresh child process (fast; no audio is kept).
    """
    texts = [str(w) for w in words]
    for w in texts:
        if not w.strip() or "\0" in w:
            raise InputError(f"transcribe: bad text {w!r}")
    if not texts:
        return []
    lib_path, data_path = find_espeak()
    server = _Server()
    try:
        meta, _ = server.run(dict(kind="transcribe", texts=texts, voice=resolve_voice(voice),
                                  lib_path=lib_path, data_path=data_path))
    finally:
        server.close()
    out = []
    for symbols in meta["phonemes"]:
        clean = [p.replace("'", "").replace(",", "") for p in symbols]
        out.append([p for p in clean if p and not p.startswith("_")])
    return out


def _build_utterance(req: SpeechRequest, pcm: bytes, native_sr: int, events: list[RawEvent]) -> Utterance:
    native = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    n_native = len(native)
    if n_native == 0:
        raise InputError(f"espeak-ng produced no audio for text {req.text!r}")
    audio = _resample(native, native_sr, req.sr_out)
    phonemes, stress, words = _timings(events, req.text, n_native, native_sr)
    return Utterance(audio=audio, sample_rate=req.sr_out, phonemes=phonemes, words=words,
                     stress=stress, request=req)


def _resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Polyphase resampling (scipy's Kaiser-windowed FIR), float32 (ceil(n * sr_out / sr_in),)."""
    if sr_in == sr_out:
        return x.astype(np.float32)
    from scipy.signal import resample_poly

    g = math.gcd(sr_in, sr_out)
    y = resample_poly(x.astype(np.float64), sr_out // g, sr_in // g)
    return np.clip(y, -1.0, 1.0).astype(np.float32)


def _token_at(text: str, start: int) -> str:
    """The whitespace-delimited token of ``text`` that starts at (or contains) character ``start``,
    without surrounding punctuation. espeak-ng's own word lengths are unreliable for words such as
    "don't", and a number spoken as several words yields the number for each of them."""
    if not 0 <= start < len(text):
        return ""
    lo = start
    while lo > 0 and not text[lo - 1].isspace():
        lo -= 1
    hi = start
    while hi < len(text) and not text[hi].isspace():
        hi += 1
    return text[lo:hi].strip(".,;:!?\"()[]{}<>")


def _timings(events: list[RawEvent], text: str, n_native: int, sr: int
             ) -> tuple[list[tuple[str, float, float]], list[int], list[tuple[str, float, float]]]:
    """Phoneme and word intervals (seconds) from the raw event list (see the module docstring)."""
    # Phoneme starts in native samples, in event order, each tagged with the current word.
    marks: list[tuple[str, int, int, int]] = []  # (symbol, sample, stress, word index or -1)
    word_spans: list[tuple[int, int]] = []  # (text position, length) per WORD event
    current_word = -1
    for etype, sample, pos, length, payload in events:
        sample = min(max(sample, 0), n_native)
        if etype == _EV_WORD:
            word_spans.append((pos, length))
            current_word = len(word_spans) - 1
        elif etype == _EV_END:
            current_word = -1
        elif etype == _EV_PHONEME:
            raw = str(payload)
            stress = 2 if "'" in raw else 1 if "," in raw else 0
            symbol = raw.replace("'", "").replace(",", "")
            if not symbol or symbol.startswith("_"):
                symbol, stress = PAUSE, 0
            marks.append((symbol, sample, stress, current_word if symbol != PAUSE else -1))
    if not marks or marks[0][1] > 0:
        marks.insert(0, (PAUSE, 0, 0, -1))
    # Merge consecutive pauses; drop marks that start where the next one starts (zero length).
    merged: list[tuple[str, int, int, int]] = []
    for m in marks:
        if merged and m[0] == PAUSE and merged[-1][0] == PAUSE:
            continue
        if merged and m[1] < merged[-1][1]:
            m = (m[0], merged[-1][1], m[2], m[3])  # never let starts go backwards
        merged.append(m)
    ends = [m[1] for m in merged[1:]] + [n_native]
    kept = [(m, e) for m, e in zip(merged, ends) if e > m[1]]
    phonemes = [(m[0], m[1] / sr, e / sr) for m, e in kept]
    stress = [m[2] for m, _ in kept]
    # Merge pauses that became adjacent after dropping zero-length phonemes.
    out_ph: list[tuple[str, float, float]] = []
    out_st: list[int] = []
    for p, s in zip(phonemes, stress):
        if out_ph and p[0] == PAUSE and out_ph[-1][0] == PAUSE:
            out_ph[-1] = (PAUSE, out_ph[-1][1], p[2])
            continue
        out_ph.append(p)
        out_st.append(s)

    words: list[tuple[str, float, float]] = []
    for w, (pos, length) in enumerate(word_spans):
        spans = [(m[1], e) for m, e in kept if m[3] == w]
        if not spans:
            continue
        words.append((_token_at(text, pos - 1), spans[0][0] / sr, spans[-1][1] / sr))
    return out_ph, out_st, words
