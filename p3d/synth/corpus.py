"""The built-in synthetic corpora: ``synth-voca``, ``synth-mead`` and ``synth-lrs3``.

Each stands in for a real dataset of the paper and is written in the layout :mod:`p3d.corpus` reads
(the processed-VOCASET layout plus frame labels and, for the LRS3 stand-in, the 2D lip video):

==============  ==============================  =======================================================
corpus          stands in for                   what differs
==============  ==============================  =======================================================
``synth-voca``  VOCASET (Config 1)              12 identities split 8 / 2 / 2 (train / val / test) like
                                                VOCASET; vertices at 60 fps (models take every second
                                                frame); a narrow loudness range (±1.5 dB per clip)
``synth-mead``  MEAD-3D (Config 2)              three intensity levels (soft / normal / loud: vocal
                                                effort, below, and articulation amplitude), MEAD
                                                names ``{id}_neutral_level_{n}_{clip}``, 30 fps,
                                                test identities
``synth-lrs3``  LRS3 (stage 1) / LRS3-3D        many identities (60 at ``cpu``), broad rate, pitch and
                (stage 2)                       loudness, 25 fps, plus ``lipvideo/<stem>.npy`` mouth crops
==============  ==============================  =======================================================

Every clip is real synthesised speech (espeak-ng, :mod:`p3d.synth.speech`) with exact phoneme timings,
articulated on the licence-clean face mesh (:mod:`p3d.synth.face`) by the procedural rig
(:mod:`p3d.synth.rig`) through visemes with Cohen-Massaro coarticulation (:mod:`p3d.synth.visemes`)
in an identity's shape and style (:mod:`p3d.synth.identity`). The articulation amplitude of a clip
grows with its loudness (an identity-wise slope plus noise), so each corpus has a clearly positive
but imperfect speech-lip intensity correlation (SLCC), like the real data (:func:`corpus_slcc`).

Vocal effort. Each clip's loudness offset from its speaker's normal level, ``effort_db`` (the MEAD
level's offset plus a per-clip spread; the per-clip spread alone in the other corpora), is spoken
with matching effort, not just gain (:mod:`p3d.synth.effort`): espeak volume (the gain), a flatter
spectral tilt and more energy at 2-4 kHz (a linear-phase filter), higher pitch and a slower rate,
each scaled by the speaker's ``effort_sensitivity``. So the level survives loudness normalisation.

==================  =======================  ===========  ========  ==========  ==========
MEAD level          effort_db (espeak vol.)  tilt         F0        rate        amplitude
==================  =======================  ===========  ========  ==========  ==========
1 (soft)            -3.0 dB (48)             -1.2 dB/oct  -1.1 st   +3 %        x 0.85
2 (normal)          0 dB (68)                0            0         0           x 1.00
3 (loud)            +3.0 dB (96)             +1.2 dB/oct  +1.1 st   -3 %        x 1.17
==================  =======================  ===========  ========  ==========  ==========

(Tilt, F0 and rate at ``effort_sensitivity`` 1, pivot 1 kHz. A per-clip spread of 2.5 dB (sd) comes on
top, so the levels overlap in loudness and the within-level SLCC is clearly positive. The espeak
volumes are multiplied by the identity's base volume, 0.9-1.1; they sit lower than in generator 1.x so
that loud clips mostly stay below espeak-ng's compression and full scale.) The articulation amplitude
of a clip is the level factor times the identity-wise loudness slope and noise
(:meth:`p3d.synth.identity.Identity.clip_amplitude`): on average about 0.75 / 1.0 / 1.3 for levels
1 / 2 / 3. The paper gives no lip-amplitude contrast between MEAD-3D levels, only the data's SLCC
(0.24 / 0.30 / 0.39 per level, 0.42 pooled, Table 4). Measured on the ``cpu`` test split (seed 0, 504
clips; :func:`corpus_slcc`): 0.22 / 0.20 / 0.29 per level (each ±0.15), 0.60 pooled (±0.06): the
pooled value exceeds MEAD-3D's because of the articulation contrast between levels.

Upper face. Brows rise on stressed syllables and at phrase starts, more for louder clips, and the
eyes blink every 2-6 s and at phrase boundaries (:mod:`p3d.synth.upper_face`), so the ground truth
has upper-face dynamics for FDD (Table S7).

Presets: ``smoke`` (seconds, tests), ``cpu`` (minutes; synth-mead keeps a small train split, 6 x 3
x 8 clips, but tests on 6 identities x 3 levels x 28 = 504 clips: a 95 % interval of about ±0.08 on
the pooled SLCC, ±0.14 per level), ``full`` (under 2 minutes for all three on two cores, 2026-12-02: 6 test identities x 3 levels x
84 = 1512 synth-mead test clips, ~500 per level, for level-wise SLCC intervals of about ±0.08; 4
synth-voca test identities x 40 sentences; synth-lrs3 with a val split of 8 identities for the critics'
validation plateau), ``paper`` (dense mesh, paper-sized). Half-width of a 95 %
Fisher-z interval of r ~ 0.3 on n clips: ``1.96 (1 - r^2) / sqrt(n - 3)``.

Determinism: everything derives from ``(seed, corpus, clip index)``; espeak-ng runs one fresh process
per utterance with fixed noise seeds, so the same seed gives byte-identical wav and vertex files.
Resumable: a clip is complete when its ``labels/<stem>.npz`` exists (written last, atomically, after
its vertices, wav and lip video); a re-run skips complete clips, and a corpus whose ``meta.json``
(written last of all) matches the requested spec is left alone. An unfinished corpus records its spec's hash
in ``.partial.json`` (removed when ``meta.json`` is written), so that a re-run with another preset, seed or
version refuses the folder instead of completing the other settings' clips into a corpus labelled as its own.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from p3d.errors import InputError, whole_number
from p3d.progress import show_progress
from p3d.registry import PRESETS  # every preset sizes its corpora

log = logging.getLogger(__name__)

GENERATOR_VERSION = "2.0"
#: Beside the clips of an unfinished corpus: the spec hash they were made with (see the module docstring).
PARTIAL_RECORD = ".partial.json"
SAMPLE_RATE = 16000
CORPORA: tuple[str, ...] = ("synth-voca", "synth-mead", "synth-lrs3")


@dataclasses.dataclass(frozen=True)
class CorpusSpec:
    """Size and character of one synthetic corpus at one preset."""

    name: str
    kind: str  # vocaset | mead | lrs3
    fps: int  # vertex files
    model_fps: int  # what models see
    splits: dict[str, int]  # identities per split, in identity order
    clips_per_identity: int  # sentences (voca, lrs3) or clips per level (mead)
    variant: str = "base"  # face mesh variant
    levels: tuple[int, ...] = ()  # MEAD intensity levels
    level_volume: tuple[int, ...] = ()  # espeak volume per level
    level_amplitude: tuple[float, ...] = ()  # articulation amplitude factor per level
    volume_range: tuple[int, int] = (85, 115)  # identity base volume (espeak 0-200)
    clip_db_sd: float = 1.5  # per-clip loudness spread around the identity / level volume
    rate_range: tuple[int, int] = (150, 185)  # words per minute, per identity
    rate_jitter: float = 0.04  # per clip, relative
    pitch_range: tuple[int, int] = (35, 65)
    words: tuple[int, int] = (5, 10)
    lip_video_size: int = 0  # mouth crop side in pixels; 0 = no lip video
    test_clips_per_identity: int = 0  # clips_per_identity of the test identities; 0 = the same

    def __post_init__(self) -> None:
        """Refuse settings the generator cannot make (``custom`` specs of :func:`build`); one line each."""
        from p3d.synth.face import VARIANTS

        def whole(name: str, lo: int) -> None:
            v = getattr(self, name)
            if whole_number(v, lo) is None or not isinstance(v, (int, np.integer)):  # a count, not 2.0
                raise InputError(f"corpus spec {name}: expected an integer >= {lo}, got {v!r}")

        def span(name: str, lo: float, hi: float) -> None:
            v = getattr(self, name)
            if len(v) != 2 or not all(np.isfinite(v)) or not lo <= v[0] <= v[1] <= hi:
                raise InputError(f"corpus spec {name}: expected (low, high) with {lo:g} <= low <= high <= {hi:g}, "
                                 f"got {v!r}")

        if self.kind not in ("vocaset", "mead", "lrs3") or self.variant not in VARIANTS:
            raise InputError(f"corpus spec: unknown kind {self.kind!r} or face variant {self.variant!r}")
        for name, lo in (("fps", 1), ("model_fps", 1), ("clips_per_identity", 1), ("test_clips_per_identity", 0),
                         ("lip_video_size", 0)):
            whole(name, lo)
        if self.fps % self.model_fps:
            raise InputError(f"corpus spec: fps {self.fps} must be a multiple of model_fps {self.model_fps}")
        if not 0 <= self.lip_video_size <= 1024 or 0 < self.lip_video_size < 8:  # mouth_crop's range; 0 = none
            raise InputError(f"corpus spec lip_video_size: expected 0 (none) or 8-1024 pixels, got {self.lip_video_size}")
        counts = list(self.splits.values())
        if (not counts or any(isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0 for k in counts)
                or sum(counts) < 1):
            raise InputError(f"corpus spec splits: expected identities per split (integers >= 0, at least one in "
                             f"all), got {self.splits!r}")
        if self.levels and not (len(self.levels) >= 2 and len(self.level_volume) == len(self.level_amplitude)
                                == len(self.levels) and min(self.level_volume) > 0
                                and all(np.isfinite(self.level_amplitude)) and min(self.level_amplitude) > 0):
            raise InputError("corpus spec levels: expected two or more levels (the second is the normal level), "
                             "each with a positive espeak volume and articulation amplitude")
        for name in ("clip_db_sd", "rate_jitter"):
            if not (np.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise InputError(f"corpus spec {name}: expected a finite number >= 0, got {getattr(self, name)!r}")
        span("volume_range", 1, 200)  # espeak-ng's ranges (p3d.synth.speech.SpeechRequest)
        span("rate_range", 80, 450)
        span("pitch_range", 0, 100)

    def clips_of(self, split: str) -> int:
        """Sentences (voca, lrs3) or clips per level (mead) of one identity of ``split``."""
        return self.test_clips_per_identity if split == "test" and self.test_clips_per_identity else \
            self.clips_per_identity

    @property
    def n_identities(self) -> int:
        return sum(self.splits.values())

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def spec(name: str, preset: str) -> CorpusSpec:
    """The :class:`CorpusSpec` of corpus ``name`` at ``preset`` (``smoke`` | ``cpu`` | ``full`` | ``paper``)."""
    if name not in CORPORA:
        raise InputError(f"unknown corpus {name!r}; choose from {', '.join(CORPORA)} or all")
    if preset not in PRESETS:
        raise InputError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    variant = "dense" if preset == "paper" else "base"
    if name == "synth-voca":
        splits = {"smoke": (2, 1, 1), "cpu": (8, 2, 2), "full": (8, 2, 4), "paper": (8, 2, 2)}[preset]
        n = {"smoke": 4, "cpu": 24, "full": 40, "paper": 40}[preset]
        return CorpusSpec(name, "vocaset", 60, 30, dict(zip(("train", "val", "test"), splits)), n, variant)
    if name == "synth-mead":
        splits = {"smoke": (2, 1), "cpu": (6, 6), "full": (12, 6), "paper": (12, 3)}[preset]
        n = {"smoke": 2, "cpu": 8, "full": 84, "paper": 190}[preset]
        n_test = {"cpu": 28}.get(preset, 0)  # cpu: a small train split, >= 500 test clips for level-wise SLCC
        return CorpusSpec(name, "mead", 30, 30, dict(zip(("train", "test"), splits)), n, variant,
                          test_clips_per_identity=n_test,
                          levels=(1, 2, 3), level_volume=(48, 68, 96), level_amplitude=(0.85, 1.0, 1.17),
                          volume_range=(90, 110), clip_db_sd=2.5, rate_range=(145, 185))
    # full: a val split for the critics' validation-plateau rule (p3d.train.convergence)
    splits = {"smoke": {"train": 5, "test": 1}, "cpu": {"train": 54, "test": 6},
              "full": {"train": 108, "val": 8, "test": 12}, "paper": {"train": 740, "test": 48}}[preset]
    n = {"smoke": 3, "cpu": 8, "full": 8, "paper": 22}[preset]
    size = {"smoke": 32, "cpu": 48, "full": 48, "paper": 96}[preset]
    return CorpusSpec(name, "lrs3", 25, 25, splits, n, variant,
                      volume_range=(45, 150), clip_db_sd=3.0, rate_range=(125, 215), rate_jitter=0.08,
                      pitch_range=(20, 80), words=(4, 12), lip_video_size=size)


@dataclasses.dataclass(frozen=True)
class ClipJob:
    """Everything needed to make one clip, drawn deterministically before any synthesis."""

    index: int
    stem: str
    identity: int
    identity_name: str
    split: str
    text: str
    voice: str
    rate: int
    pitch: int
    volume: int
    z_loudness: float
    level: int | None
    amplitude_factor: float
    effort_db: float = 0.0
    effort_sensitivity: float = 1.0


def _identity_names(s: CorpusSpec) -> list[str]:
    if s.kind == "vocaset":
        return [f"SynthVoca_{i:02d}_TA" for i in range(s.n_identities)]
    if s.kind == "mead":
        return [f"S{i:03d}" for i in range(s.n_identities)]
    return [f"spk{i:03d}" for i in range(s.n_identities)]


def _split_of(s: CorpusSpec) -> list[str]:
    out: list[str] = []
    for split, k in s.splits.items():
        out.extend([split] * k)
    return out


def _seed_for(seed: int, name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:4], "little")


def plan(s: CorpusSpec, seed: int) -> list[ClipJob]:
    """All clip jobs of a corpus, in a fixed order (a pure function of the spec and the seed)."""
    from p3d.synth.effort import effort_voice
    from p3d.synth.identity import sample_identities
    from p3d.synth.sentences import make_sentences
    from p3d.synth.speech import list_voices

    cseed = _seed_for(seed, s.name)
    names = _identity_names(s)
    splits = _split_of(s)
    voices = list_voices()
    people = sample_identities(len(names), _identity_seed(s, seed))
    rng = np.random.default_rng([cseed, 0])
    per_id = [s.clips_of(sp) * max(1, len(s.levels)) for sp in splits]
    first = np.concatenate([[0], np.cumsum(per_id)]).astype(int)  # each identity's first sentence
    sentences = make_sentences(int(first[-1]), seed=cseed, min_words=s.words[0], max_words=s.words[1])
    jobs: list[ClipJob] = []
    index = 0
    for i, name in enumerate(names):
        voice = voices[int(rng.integers(len(voices)))]
        base_rate = int(rng.integers(s.rate_range[0], s.rate_range[1] + 1))
        pitch = int(rng.integers(s.pitch_range[0], s.pitch_range[1] + 1))
        base_volume = float(rng.uniform(*s.volume_range))
        levels = s.levels or (None,)
        # identity-wise loudness distribution (dB re the base volume): level offsets + per-clip spread
        level_db = ([20 * np.log10(v / s.level_volume[1]) for v in s.level_volume] if s.levels else [0.0])
        sd_total = float(np.sqrt(s.clip_db_sd ** 2 + np.var(level_db)))
        k = 0
        for li, level in enumerate(levels):
            for c in range(s.clips_of(splits[i])):
                crng = np.random.default_rng([cseed, 1, index])
                db = level_db[li] + float(crng.normal(0.0, s.clip_db_sd))
                ref = s.level_volume[li] * base_volume / 100.0 if s.levels else base_volume
                volume = int(np.clip(round(ref * 10 ** ((db - level_db[li]) / 20)), 10, 160))
                rate = int(round(base_rate * (1 + s.rate_jitter * float(crng.standard_normal()))))
                sens = round(people[i].effort_sensitivity, 4)  # as recorded: the record reproduces the audio
                clip_pitch, rate = effort_voice(db, pitch, int(np.clip(rate, 80, 400)), sens)
                if s.kind == "vocaset":
                    stem = f"{name}_sentence{c + 1:02d}"
                elif s.kind == "mead":
                    stem = f"{name}_neutral_level_{level}_{c + 1:03d}"
                else:
                    stem = f"{name}_{c + 1:05d}"
                jobs.append(ClipJob(index=index, stem=stem, identity=i, identity_name=name, split=splits[i],
                                    text=sentences[first[i] + k], voice=voice, rate=rate,
                                    pitch=clip_pitch, volume=volume, z_loudness=db / sd_total, level=level,
                                    amplitude_factor=s.level_amplitude[li] if s.levels else 1.0,
                                    effort_db=round(db, 4), effort_sensitivity=sens))
                index += 1
                k += 1
    return jobs


class _IdentityCache:
    """Per-identity rig, template and crop window, built once."""

    def __init__(self, s: CorpusSpec, seed: int):
        from p3d.synth.identity import sample_identities

        self.s = s
        self.people = sample_identities(s.n_identities, _identity_seed(s, seed))
        self._rigs: dict[int, Any] = {}
        self._windows: dict[int, Any] = {}

    def rig(self, i: int) -> Any:
        from p3d.synth.identity import identity_rig

        if i not in self._rigs:
            self._rigs[i] = identity_rig(self.people[i], self.s.variant)
        return self._rigs[i]

    def template(self, i: int) -> np.ndarray:
        from p3d.synth.identity import identity_template

        return identity_template(self.people[i], self.s.variant).astype(np.float32)

    def window(self, i: int, lips: np.ndarray) -> Any:
        from p3d.synth.mouth_crop import CropWindow

        if i not in self._windows:
            self._windows[i] = CropWindow.from_lips(self.template(i), lips)
        return self._windows[i]


def _identity_seed(s: CorpusSpec, seed: int) -> int:
    return _seed_for(seed, s.name + ":identity")


def with_effort(job: ClipJob, utt: Any) -> Any:
    """The utterance with the clip's vocal-effort spectrum (:func:`p3d.synth.effort.apply_tilt`)."""
    from p3d.synth.effort import apply_tilt

    audio = apply_tilt(utt.audio, utt.sample_rate, job.effort_db, job.effort_sensitivity)
    return dataclasses.replace(utt, audio=audio)


def resynthesize(record: dict[str, Any], sample_rate: int = SAMPLE_RATE) -> Any:
    """Re-make a clip's :class:`~p3d.synth.speech.Utterance` (audio and exact timings) from its record
    (``labels/<stem>.npz`` ``record``): espeak-ng with the record's voice, rate, pitch and volume, then
    the vocal-effort filter (records without ``effort_db``, from generator 1.x, get none). Byte-equal to
    the corpus wav up to its PCM16 quantisation."""
    from p3d.synth.effort import apply_tilt
    from p3d.synth.speech import synthesize

    try:
        utt = synthesize(record["sentence"], voice=record["voice"], rate=int(record["rate"]),
                         pitch=int(record["pitch"]), volume=int(record["volume"]), sr_out=sample_rate)
    except KeyError as exc:
        raise InputError(f"clip record lacks {exc.args[0]!r}; cannot re-synthesise it") from None
    audio = apply_tilt(utt.audio, utt.sample_rate, float(record.get("effort_db", 0.0)),
                       float(record.get("effort_sensitivity", 1.0)))
    return dataclasses.replace(utt, audio=audio)


def _phoneme_inventory() -> list[str]:
    from p3d.synth.visemes import PAUSE, PHONEME_TO_VISEME

    return [PAUSE, *sorted(k for k in PHONEME_TO_VISEME if k != PAUSE), "?"]


def make_clip(job: ClipJob, utt: Any, s: CorpusSpec, people: _IdentityCache, topology: Any,
              faces: np.ndarray) -> dict[str, Any]:
    """Articulate one utterance: vertices (T, V, 3) float32, frame labels, lip video, clip record."""
    from p3d.metrics import speech_intensity
    from p3d.synth.upper_face import upper_face_motion
    from p3d.synth.visemes import articulate, canonical_phoneme, frame_labels

    n_frames = int(np.floor(utt.duration * s.fps))
    if n_frames < 10:
        raise InputError(f"{job.stem}: utterance too short ({utt.duration:.2f} s)")
    person = people.people[job.identity]
    style = person.style(job.z_loudness, np.random.default_rng([job.index, 7]))
    style = dataclasses.replace(style, amplitude=style.amplitude * job.amplitude_factor)
    params = articulate(utt.phonemes, s.fps, n_frames, style)
    upper_style = person.upper_face_style(style.amplitude / person.amplitude)
    upper = upper_face_motion(utt.phonemes, utt.stress, s.fps, n_frames, upper_style,
                              np.random.default_rng([job.index, 11]), audio=utt.audio, sample_rate=utt.sample_rate)
    vertices = people.rig(job.identity).pose(params, upper).astype(np.float32)
    symbols, visemes = frame_labels(utt.phonemes, s.fps, n_frames)
    inventory = _phoneme_inventory()
    lookup = {p: i for i, p in enumerate(inventory)}
    unknown = len(inventory) - 1
    phoneme_ids = np.asarray([lookup.get(canonical_phoneme(p) or "?", unknown) for p in symbols], dtype=np.int16)
    out: dict[str, Any] = {"vertices": vertices, "phoneme": phoneme_ids, "viseme": visemes.astype(np.int16)}
    if s.lip_video_size:
        from p3d.synth.mouth_crop import render_mouth_crops

        lips = topology.lips
        out["lip_video"] = render_mouth_crops(vertices, faces, people.window(job.identity, lips),
                                              lip_vertices=lips, size=s.lip_video_size)
    out["record"] = {
        "stem": job.stem, "identity": job.identity_name, "split": job.split, "level": job.level,
        "sentence": job.text, "n_frames": n_frames, "duration_s": round(float(utt.duration), 4),
        "speech_rms": speech_intensity(utt.audio), "voice": job.voice, "rate": job.rate, "pitch": job.pitch,
        "volume": job.volume, "z_loudness": round(job.z_loudness, 4), "amplitude": round(style.amplitude, 4),
        "effort_db": job.effort_db, "effort_sensitivity": job.effort_sensitivity,
        "brow_peak": round(float(upper[:, 0].max(initial=0.0)), 4),
        "blink_frames": int(np.sum(upper[:, 1] > 0.5)),
    }
    return out


def _write_clip(root: Path, job: ClipJob, utt: Any, made: dict[str, Any]) -> None:
    from p3d.atomic import atomic_open, save_npy

    v = made["vertices"]
    save_npy(root / "vertices_npy" / f"{job.stem}.npy", v.reshape(len(v), -1))
    utt.write_wav(root / "wav" / f"{job.stem}.wav")
    if "lip_video" in made:
        save_npy(root / "lipvideo" / f"{job.stem}.npy", made["lip_video"])
    rec = made["record"]
    with atomic_open(root / "labels" / f"{job.stem}.npz", "wb") as fh:  # written last: the clip is complete
        np.savez(fh, phoneme=made["phoneme"], viseme=made["viseme"],
                 record=np.asarray(json.dumps(rec, sort_keys=True)))


def _read_record(root: Path, stem: str) -> dict[str, Any]:
    with np.load(root / "labels" / f"{stem}.npz", allow_pickle=False) as d:
        return json.loads(str(d["record"]))


def _spec_hash(s: CorpusSpec, seed: int) -> str:
    blob = json.dumps({"spec": s.to_dict(), "seed": seed, "version": GENERATOR_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def build(name: str, preset: str, out: str | Path, *, seed: int = 0, workers: int = 1,
          progress: bool | None = None, custom: CorpusSpec | None = None) -> Path:
    """Generate (or complete) corpus ``name`` at ``preset`` under ``out/name``; returns its folder.

    ``custom`` replaces the preset's :class:`CorpusSpec` (tests and experiments; it is recorded in meta.json).
    """
    from tqdm.auto import tqdm

    from p3d.synth import face
    from p3d.synth.speech import SpeechRequest, iter_synthesize

    s = custom if custom is not None else spec(name, preset)
    root = Path(out) / name
    digest = _spec_hash(s, seed)
    if check_target(root, digest):
        log.info("%s is complete (%s); nothing to do", root, digest)
        return root
    _claim_unfinished(root, digest, seed, preset)
    jobs = plan(s, seed)
    todo = [j for j in jobs if not (root / "labels" / f"{j.stem}.npz").exists()]
    log.info("%s: %d clips, %d to make", name, len(jobs), len(todo))
    topology = face.face_topology(s.variant)
    faces = face.faces(s.variant)
    people = _IdentityCache(s, seed)
    requests = [SpeechRequest(j.text, voice=j.voice, rate=j.rate, pitch=j.pitch, volume=j.volume) for j in todo]
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc=name, unit="clip",
               disable=not show_progress(progress))
    for job, utt in zip(todo, iter_synthesize(requests, workers=max(1, workers))):
        utt = with_effort(job, utt)
        _write_clip(root, job, utt, make_clip(job, utt, s, people, topology, faces))
        bar.update(1)
    bar.close()
    _finish(root, s, seed, preset, jobs, people, topology, digest)
    return root


#: The folders of a corpus (:func:`_write_clip`).
_CLIP_FOLDERS = ("vertices_npy", "wav", "lipvideo", "labels")


def _read_json_record(path: Path) -> dict[str, Any]:
    """``path``'s JSON object, or {} when it cannot be read as one (corrupt, not UTF-8, a folder, a list)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return record if isinstance(record, dict) else {}


def check_target(root: str | Path, digest: str) -> bool:
    """Whether corpus folder ``root`` already holds the finished corpus of spec hash ``digest`` (True), or is
    new or an unfinished corpus of the same settings (False); writes nothing. Refuses (InputError) a folder
    that cannot take it: a file in its place or in place of one of its folders, a corpus of other settings,
    finished or not, or clips whose settings it does not record."""
    from p3d.atomic import check_out_dir

    root = Path(root)
    check_out_dir(root, label=f"corpus folder {root}")
    for sub in _CLIP_FOLDERS:
        if (root / sub).exists() and not (root / sub).is_dir():
            raise InputError(f"{root / sub} exists and is not a folder; delete it or choose another --out")
    if (root / "meta.json").exists():
        if _read_json_record(root / "meta.json").get("spec_hash") == digest:
            return True
        raise InputError(f"{root} holds a corpus made with another preset/seed/version; choose another --out")
    if (root / PARTIAL_RECORD).exists():
        if _read_json_record(root / PARTIAL_RECORD).get("spec_hash") != digest:
            raise InputError(f"{root} holds an unfinished corpus of another preset/seed/version; delete it or "
                             f"choose another --out")
    elif any((root / "labels").glob("*.npz")):
        raise InputError(f"{root} holds clips of an unfinished corpus whose settings it does not record; delete "
                         f"it or choose another --out")
    return False


def _claim_unfinished(root: Path, digest: str, seed: int, preset: str) -> None:
    """Record ``digest`` in ``root``'s :data:`PARTIAL_RECORD` before the first clip is made (unless there;
    :func:`check_target` has refused a folder of other settings)."""
    from p3d.atomic import write_json

    if (root / PARTIAL_RECORD).exists():
        return
    root.mkdir(parents=True, exist_ok=True)
    write_json(root / PARTIAL_RECORD, {"spec_hash": digest, "seed": seed, "preset": preset})


def _finish(root: Path, s: CorpusSpec, seed: int, preset: str, jobs: list[ClipJob], people: _IdentityCache,
            topology: Any, digest: str) -> None:
    import pandas as pd

    from p3d.atomic import atomic_open, write_json, write_text
    from p3d.synth.visemes import VISEMES

    records = [_read_record(root, j.stem) for j in jobs]
    df = pd.DataFrame(records)
    with atomic_open(root / "clips.csv", "w", newline="") as fh:
        df.to_csv(fh, index=False)
    templates = {name: people.template(i) for i, name in enumerate(_identity_names(s))}
    with atomic_open(root / "templates.pkl", "wb") as fh:
        pickle.dump(templates, fh, protocol=2)
    topology.save_npz(root / "topology.npz")
    names = _identity_names(s)
    splits = _split_of(s)
    meta = {
        "name": s.name, "kind": s.kind, "fps": s.fps, "model_fps": s.model_fps, "sample_rate": SAMPLE_RATE,
        "topology": f"synth-face-{s.variant}", "n_vertices": topology.n_vertices,
        "splits": {sp: [n for n, x in zip(names, splits) if x == sp] for sp in s.splits},
        "phonemes": _phoneme_inventory(), "visemes": list(VISEMES),
        "lip_video": {"size": s.lip_video_size, "channels": 1, "fps": s.fps} if s.lip_video_size else None,
        "n_clips": len(df), "hours": round(float(df["duration_s"].sum()) / 3600, 4),
        "seed": seed, "preset": preset, "spec": s.to_dict(), "spec_hash": digest,
        "generator": {"name": "p3d.synth.corpus", "version": GENERATOR_VERSION},
    }
    write_text(root / "README.md", dataset_card(meta, df))
    write_json(root / "meta.json", meta)  # last: marks the corpus complete
    (root / PARTIAL_RECORD).unlink(missing_ok=True)


def dataset_card(meta: dict[str, Any], df: Any) -> str:
    """A short dataset card (README.md) for a generated corpus."""
    counts = df.groupby("split")["identity"].nunique().to_dict()
    lines = [
        f"# {meta['name']} (p3d synthetic corpus, preset `{meta['preset']}`, seed {meta['seed']})",
        "",
        f"Stand-in for {dict(vocaset='VOCASET', mead='MEAD-3D', lrs3='LRS3 / LRS3-3D')[meta['kind']]}, generated by "
        f"`p3d data synth` (generator {meta['generator']['version']}). Synthetic: espeak-ng speech (GPL-3.0+ engine; "
        "the audio is program output) with exact phoneme timings, articulated on the MediaPipe canonical face mesh "
        "(Apache-2.0) by p3d's procedural rig. No real person appears in it.",
        "",
        f"- clips: {meta['n_clips']}, identities: {df['identity'].nunique()} "
        f"({', '.join(f'{k} {v}' for k, v in counts.items())}), hours: {meta['hours']:.3f}",
        f"- vertices: `vertices_npy/<stem>.npy` (T, {meta['n_vertices']}*3) float32 metres at {meta['fps']} fps "
        f"(models use {meta['model_fps']} fps); audio `wav/<stem>.wav` 16 kHz mono PCM16",
        "- labels: `labels/<stem>.npz` with per-frame `phoneme` (ids into meta.json `phonemes`, espeak-ng mnemonics) "
        "and `viseme` (ids into `visemes`), and the clip record (`record`, JSON)",
    ]
    if meta.get("lip_video"):
        lv = meta["lip_video"]
        lines.append(f"- lip video: `lipvideo/<stem>.npy` (T, {lv['size']}, {lv['size']}) uint8 grayscale mouth crops "
                     f"at {lv['fps']} fps")
    if df["level"].notna().any():
        lines.append("- intensity levels 1 / 2 / 3 (soft / normal / loud): vocal effort (espeak volume, spectral "
                     "tilt, pitch, rate) and articulation amplitude")
    lines += ["- `clips.csv`: one row per clip (identity, split, level, sentence, speech RMS, voice, rate, pitch, "
              "volume, loudness z, articulation amplitude, effort dB and sensitivity, brow-raise peak, blink frames); "
              "`templates.pkl`; `topology.npz`; `meta.json`", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# The ground truth's own expressiveness and upper-face statistics
# ------------------------------------------------------------------------------------------------
def corpus_slcc(corpus: Any, split: str | None = None, max_clips: int | None = None) -> Any:
    """The corpus' own SLCC (paper Eq. 7; Tables 2/4 "data" rows), overall and per intensity level.

    ``corpus``: a :class:`p3d.corpus.Corpus` (any, real or synthetic); ``split``: only its clips (e.g.
    ``"test"``, as the paper reports); ``max_clips``: a seeded random subset. Intensities are those of
    :func:`p3d.dataset_stats.intensities` (clip RMS of the wav; official RMS lip-intensity aggregate).
    Returns a DataFrame with one row per level (in sorted order; none for a corpus without levels)
    and a last row ``"all"`` (pooled: the table's "Avg"): level, n (clips), r, and a 95 % Fisher-z
    interval ci_low / ci_high (``tanh(atanh(r) ± 1.96 / sqrt(n - 3))``; NaN for n < 4).
    """
    import pandas as pd

    from p3d.dataset_stats import intensities
    from p3d.metrics import slcc_by_level

    if split is not None and not corpus.select(split):
        raise InputError(f"corpus_slcc: {corpus.root} has no clips in split {split!r}")
    df = intensities(corpus, max_clips=max_clips, split=split)  # max_clips of the split, not of the corpus
    levels = df["level"].to_numpy(dtype=object)
    has_levels = bool(pd.notna(df["level"]).all())
    labels = levels if has_levels else np.zeros(len(df), dtype=object)
    r = slcc_by_level(df["speech_intensity"].to_numpy(float), df["lip_intensity"].to_numpy(float),
                      df["identity"].to_numpy(dtype=object), labels)
    rows = []
    for key, value in r.items():
        if not has_levels and key != "all":
            continue
        n = len(df) if key == "all" else int(np.sum(labels == key))
        half = 1.96 / np.sqrt(n - 3) if n > 3 else np.nan
        z = np.arctanh(np.clip(value, -0.999999, 0.999999))
        rows.append({"level": key if key == "all" else int(key), "n": n, "r": float(value),
                     "ci_low": float(np.tanh(z - half)), "ci_high": float(np.tanh(z + half))})
    return pd.DataFrame(rows)


def upper_face_motion_stats(corpus: Any, split: str | None = None) -> Any:
    """Per-clip upper-face dynamics of the ground truth: the FDD statistic ``dyn`` of
    :func:`p3d.metrics.fdd.upper_face_dynamics` (mean over upper-face vertices of the std over time of
    the squared displacement from the template, m^2) and the largest upper-face displacement (m).

    A still upper face has ``dyn = 0``; FDD (GT minus prediction) is then <= 0 for every prediction.
    Returns a DataFrame: stem, identity, level, upper_dyn, upper_max_disp.
    """
    import pandas as pd

    from p3d.metrics.fdd import upper_face_dynamics

    upper = corpus.topology.upper_face
    templates = corpus.templates
    rows = []
    for clip in corpus.select(split) if split is not None else corpus.clips:
        v = corpus.vertices(clip)
        tmpl = np.asarray(templates[clip.identity], dtype=np.float64).reshape(-1, 3)
        u = v[:, upper].astype(np.float64)
        rows.append({"stem": clip.stem, "identity": clip.identity, "level": clip.level,
                     "upper_dyn": upper_face_dynamics(u, tmpl[upper]),
                     "upper_max_disp": float(np.linalg.norm(u - tmpl[upper][None], axis=2).max())})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------
# CLI: p3d data synth
# ------------------------------------------------------------------------------------------------
def register_cli(sub: Any) -> None:
    from p3d.cli import help_text

    p = sub.add_parser("synth", help="generate the synthetic corpora (synth-voca, synth-mead, synth-lrs3)",
                       description=help_text(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", choices=[*CORPORA, "all"], default="all",
                   help="the corpus to generate (default all: the three)")
    p.add_argument("--preset", choices=PRESETS, default="cpu",
                   help="corpus sizes: identities, clips and mesh (default cpu)")
    p.add_argument("--out", type=Path, default=Path("data"), help="parent folder (default data/)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of everything the corpus draws: identities, sentences, voices, ... (default 0; the same "
                        "seed, the same bytes)")
    p.add_argument("--workers", type=int, default=2, help="speech synthesis processes (default 2)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_cli)


def run_cli(args: argparse.Namespace) -> int:
    from p3d.atomic import check_out_dir

    if args.workers < 1:
        raise InputError(f"--workers: expected a positive number of speech synthesis processes, got {args.workers}")
    if args.seed < 0:  # hashed like any other here, but every other --seed of p3d refuses it (numpy does)
        raise InputError(f"--seed {args.seed}: expected an integer >= 0")
    check_out_dir(args.out)
    names = CORPORA if args.corpus == "all" else (args.corpus,)
    for name in names:  # every corpus folder before any work, not each after building the ones before it
        check_target(args.out / name, _spec_hash(spec(name, args.preset), args.seed))
    for name in names:
        root = build(name, args.preset, args.out, seed=args.seed, workers=args.workers,
                     progress=not args.no_progress)
        meta = json.loads((root / "meta.json").read_text())
        print(f"{name}: {meta['n_clips']} clips, {meta['hours']:.3f} h at {meta['fps']} fps -> {root}")
    return 0
