"""``p3d study make``: render a study's stimuli and write its manifest and survey page.

Output (``STUDY_DIR``)::

    manifest.json      everything about the study (below); the analysis reads it
    survey.html        the participant-facing page (no server; p3d.study.survey); with --single-file
                       the videos are embedded in it and it works on its own (about 4/3 of their size)
    stimuli/vNNNN.mp4  H.264 + AAC videos (p3d.viz.render.write_mp4), one per stimulus
    responses/         where the experimenter puts the exported answer files

Every input is checked before rendering starts, and the study is built in a temporary folder next to
``STUDY_DIR`` that is moved into place when complete: a failed ``make`` leaves nothing behind.

``manifest.json`` keys: ``format``, ``study_id``, ``created``, ``design``, ``rank_over``,
``question``, ``config`` (every option), ``conditions``, ``clips`` (with the source file chosen per
condition and the neutral face used), ``variants`` (lip scales, speech gains and how they are
made), ``stimuli`` (id -> file, sha256, clip, condition, transform, levels, role, frames, seconds),
``trials`` (id, kind, clip, stimuli in canonical order, conditions, per-group display ``layouts``,
``attention_check``, ``check_kinds``, ``correct`` stimulus), ``practice`` (the practice screen:
its clip, stimuli and layouts; null with ``practice=False``), ``consent_text``, ``groups``, ``participants`` (id,
group, trial order), ``counterbalance`` (how often each condition takes each position) and
``provenance``. The survey page embeds a blinded copy (no condition names, no correct answers) and
the sha256 of ``manifest.json``, which every exported answer file carries.

Data: ``--gt`` is a folder of GT ``.npy`` sequences or a corpus root (``p3d data synth`` / processed
VOCASET: ``vertices_npy/``, ``wav/``, ``meta.json``, ``templates.pkl``, ``topology.npz``), from which
frame rates, topology, templates and audio are taken unless given. Predictions are named as
``p3d predict`` writes them (``<gt_stem>_condition_<identity>.npy``, or ``<gt_stem>.npy``) at
``--fps``; GT at ``--gt-fps`` is subsampled to ``--fps``. For each clip one conditioning identity is
drawn (seeded), shared by all conditions when they have it in common.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from p3d.atomic import remove_dead_stages, stage_dir
from p3d.errors import InputError
from p3d.progress import show_progress
from p3d.study import design as D
from p3d.study import variants as V

log = logging.getLogger(__name__)

FORMAT = "p3d-study/1"
DEFAULT_CONSENT = (
    "This study is part of research on computer-generated talking faces. You will watch short videos with "
    "speech and answer one question per screen; it takes about 10-20 minutes. Taking part is voluntary and "
    "you may stop at any time by closing this page. Your answers are stored in a file you download at the end "
    "and send to the experimenter; they are linked only to your participant code, not to your name. "
    "Ask the experimenter if anything is unclear.")
VARIANT_DEFINITION = (
    "lip level l: v'(t) = n + s_l (v(t) - n), n the neutral face (template, else the first GT frame), s_l the "
    "l-th lip scale, so the lip intensity is s_l times the source's; speech level k: the waveform times "
    "10^(g_k/20) after normalising the clip so that the middle level has an RMS of -23 dBFS (lowered if the "
    "loudest level would peak above 0.95); loudness only, no Lombard-style spectral change (p3d.study.variants)")


@dataclasses.dataclass
class MakeConfig:
    """Options of :func:`make_study` (``p3d study make``); see the module docstrings of
    :mod:`p3d.study.design` and :mod:`p3d.study.variants` for what they mean."""

    design: str
    gt: Path
    out: Path
    conditions: list[D.Condition] = dataclasses.field(default_factory=list)
    audio: Path | None = None
    pairs: list[tuple[str, str]] | None = None
    rank_over: str = "intensity"
    clips: int = 6
    clip_names: list[str] | None = None
    seed: int = 0
    participants: int = 24
    attention_checks: int = 2
    check_shift_ms: float = 500.0
    lip_scales: tuple[float, ...] = (0.5, 1.0, 1.5)
    speech_gains_db: tuple[float, ...] = (-9.0, 0.0, 9.0)
    question: str | None = None
    fps: float | None = None
    gt_fps: float | None = None
    topology: str | None = None
    faces: Path | None = None
    templates: Path | None = None
    size: int = 400
    max_seconds: float | None = None
    confidence: str = "optional"  # off | optional | required
    require_full_view: bool = True
    title: str = "Talking-head study"
    practice: bool = True
    consent_text: str | None = None
    single_file: bool = False
    overwrite: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["conditions"] = [c.to_dict() for c in self.conditions]
        return json.loads(json.dumps(d, default=str))


class StudyData:
    """The GT, audio, predictions, topology and templates a study is rendered from."""

    def __init__(self, cfg: MakeConfig):
        from p3d import io
        from p3d.topology import load_topology

        root = Path(cfg.gt)
        if not root.is_dir():
            raise InputError(f"--gt {root}: folder not found")
        meta: dict[str, Any] = {}
        if (root / "meta.json").exists():
            meta = io.load_json(root / "meta.json")
        self.gt_dir = io.vertices_dir(root)
        self.audio_dir = io.audio_dir(cfg.audio if cfg.audio is not None else root)
        if not self.audio_dir.is_dir() or not any(self.audio_dir.glob("*.wav")):
            raise InputError(f"--audio {cfg.audio or root}: no .wav files (the stimuli need the speech); "
                             "pass --audio DIR")
        # a given rate is checked, not replaced by the default when 0 (falsy) nor compared when NaN
        self.fps = (io.check_frame_rate(cfg.fps, "--fps") if cfg.fps is not None
                    else float(meta.get("model_fps", meta.get("fps", 30.0))))
        gt_fps = (io.check_frame_rate(cfg.gt_fps, "--gt-fps") if cfg.gt_fps is not None
                  else float(meta.get("fps", self.fps)))
        ratio = gt_fps / self.fps
        if self.fps <= 0 or abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
            raise InputError(f"--gt-fps {gt_fps} is not a positive integer multiple of --fps {self.fps}")
        self.stride = int(round(ratio))
        spec = cfg.topology or (str(root / "topology.npz") if (root / "topology.npz").exists()
                                else meta.get("topology", "flame"))
        self.topology = load_topology(spec)
        faces = self.topology.faces
        if cfg.faces is not None:
            verts, faces = io.load_ply(cfg.faces)
            if len(verts) != self.topology.n_vertices:
                raise InputError(f"--faces {cfg.faces}: {len(verts)} vertices, the topology has "
                                 f"{self.topology.n_vertices}")
        if faces is None:
            raise InputError(f"topology {self.topology.name!r} has no triangles, which rendering needs: pass "
                             "--faces MESH.ply (e.g. FLAME_sample.ply) or a --topology .npz with faces")
        self.faces = np.asarray(faces)
        try:  # the inner-lip contours: a dark cavity is drawn behind the open mouth (synthetic face only)
            from p3d.viz.lip_shapes import mouth_regions

            self.mouth = mouth_regions(self.topology)["cavity"]
        except InputError:
            self.mouth = None
        tpl = cfg.templates or (root / "templates.pkl" if (root / "templates.pkl").exists() else None)
        self.templates = io.load_templates(tpl, self.topology.n_vertices) if tpl is not None else {}
        self.cfg = cfg

    # -- availability --------------------------------------------------------------------------
    def gt_clips(self) -> list[str]:
        stems = {p.stem for p in self.gt_dir.glob("*.npy")}
        with_audio = {s for s in stems if (self.audio_dir / f"{s}.wav").exists()}
        if not stems:
            raise InputError(f"--gt {self.cfg.gt}: no .npy sequences")
        if not with_audio:
            raise InputError(f"no GT clip of {self.gt_dir} has a .wav of the same name in {self.audio_dir}")
        return sorted(with_audio)

    def predictions(self, cond: D.Condition) -> dict[str, dict[str | None, Path]]:
        """gt stem -> {conditioning identity (None if absent): file} of a prediction folder."""
        from p3d import io

        assert cond.source is not None
        out: dict[str, dict[str | None, Path]] = {}
        for path in io.find_npy(cond.source, f"prediction folder of condition {cond.name!r}"):
            name = io.parse_clip_name(path.stem)
            out.setdefault(name.gt_stem, {})[name.condition] = path
        return out

    # -- loading -------------------------------------------------------------------------------
    def gt(self, stem: str) -> np.ndarray:
        from p3d import io

        return io.load_vertices(self.gt_dir / f"{stem}.npy", self.topology)[:: self.stride]

    def audio(self, stem: str) -> tuple[np.ndarray, int]:
        from p3d import io

        return io.load_audio(self.audio_dir / f"{stem}.wav")

    def neutral(self, stem: str, gt: np.ndarray) -> tuple[np.ndarray, str]:
        from p3d import io

        ident = io.parse_clip_name(stem).identity
        if ident in self.templates:
            return self.templates[ident].astype(np.float64), f"template of {ident}"
        return gt[0].astype(np.float64), "first GT frame"


def choose_clips(data: StudyData, cfg: MakeConfig) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """The clips of the study and, per clip and prediction condition, the chosen file (seeded)."""
    available = set(data.gt_clips())
    preds = {c.name: data.predictions(c) for c in cfg.conditions if c.source is not None}
    for name, files in preds.items():
        available &= set(files)
        if not available:
            raise InputError(f"condition {name!r}: none of its predictions matches a GT clip with audio "
                             f"(GT {data.gt_dir}, audio {data.audio_dir})")
    pool = sorted(available)
    if cfg.clip_names:
        missing = [c for c in cfg.clip_names if c not in available]
        if missing:
            raise InputError(f"--clip-names: {missing} not available in every condition with GT and audio")
        clips = sorted(dict.fromkeys(cfg.clip_names))
    else:
        if cfg.clips < 1:
            raise InputError(f"--clips must be >= 1, got {cfg.clips}")
        if cfg.clips > len(pool):
            log.warning("--clips %d: only %d clips are available in every condition; using all", cfg.clips, len(pool))
        rng = np.random.default_rng([cfg.seed, 2])
        clips = sorted(pool[i] for i in rng.choice(len(pool), size=min(cfg.clips, len(pool)), replace=False))
    rng = np.random.default_rng([cfg.seed, 3])
    chosen: dict[str, dict[str, Any]] = {}
    unshared = []
    for clip in clips:
        per = {name: files[clip] for name, files in preds.items()}
        common = set.intersection(*(set(f) for f in per.values())) if per else set()
        if len(per) > 1 and not common:
            unshared.append(clip)
        pick: dict[str, Any] = {}
        shared = sorted(common, key=str)[int(rng.integers(len(common)))] if common else None
        for name, files in per.items():
            ident = shared if common else sorted(files, key=str)[int(rng.integers(len(files)))]
            pick[name] = {"file": str(files[ident]), "conditioning_identity": ident}
        chosen[clip] = pick
    if unshared:  # each condition then speaks in its own drawn style: the comparison mixes style with the method
        log.warning("%d of %d clips (%s): the conditions' predictions share no conditioning identity, so each "
                    "condition shows its own (drawn) one; predict them with a common identity to compare like with "
                    "like", len(unshared), len(clips), ", ".join(unshared[:3]) + (", ..." if len(unshared) > 3 else ""))
    return clips, chosen


def choose_practice_clip(data: StudyData, clips: list[str], seed: int) -> str:
    """The clip of the practice screen: drawn (seeded) from the GT clips with audio that are not in the
    study, so no video of the study is seen before its trial; a study clip only when there is no other."""
    others = sorted(set(data.gt_clips()) - set(clips))
    pool = others or sorted(clips)
    if not others:
        log.info("practice screen uses study clip %s (the data has no other clip)", pool[0])
        return pool[0]
    return pool[int(np.random.default_rng([seed, 4]).integers(len(pool)))]


def _sha256(path: Path) -> str:
    from p3d.provenance import file_sha256

    return file_sha256(path)


def make_study(cfg: MakeConfig, *, progress: bool | None = None) -> dict[str, Any]:
    """Render the stimuli and write ``manifest.json``, ``survey.html`` and ``responses/``; returns the manifest.

    All inputs are checked before anything is written; the study is built in a temporary folder next
    to ``cfg.out`` and moved into place only when complete, so an error leaves nothing behind (and an
    ``--overwrite`` rebuild that fails leaves the old study as it was)."""
    out = Path(cfg.out)
    if cfg.confidence not in {"off", "optional", "required"}:
        raise InputError(f"--confidence {cfg.confidence!r}: choose off, optional or required")
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, (int, np.integer)) or cfg.seed < 0:
        raise InputError(f"--seed {cfg.seed!r}: expected an integer >= 0")  # numpy's generators refuse others
    if not 32 <= cfg.size <= 1920:
        raise InputError(f"--size {cfg.size}: expected 32-1920 pixels")
    if cfg.max_seconds is not None and not (np.isfinite(cfg.max_seconds) and cfg.max_seconds > 0):
        raise InputError(f"--max-seconds must be a positive number of seconds, got {cfg.max_seconds}")
    if cfg.consent_text is not None and not cfg.consent_text.strip():
        raise InputError("--consent-text is empty")
    _check_out(out, cfg.overwrite)
    data = StudyData(cfg)
    clips, chosen = choose_clips(data, cfg)
    practice_clip = choose_practice_clip(data, clips, cfg.seed) if cfg.practice else None
    plan = D.plan_study(cfg.design, cfg.conditions, clips, pairs=cfg.pairs, rank_over=cfg.rank_over,
                        lip_scales=tuple(cfg.lip_scales), speech_gains_db=tuple(cfg.speech_gains_db),
                        attention_checks=cfg.attention_checks, check_shift_ms=cfg.check_shift_ms,
                        participants=cfg.participants, question=cfg.question, seed=cfg.seed,
                        practice_clip=practice_clip, fps=data.fps)
    check_stimuli(cfg, data, clips, chosen, plan)  # every input, before the first video is rendered
    created = _missing_parents(out)
    for parent in reversed(created):
        parent.mkdir()
    remove_dead_stages(out, "p3d-make")  # what a killed make left (videos: as large as a study)
    build = stage_dir(out, "p3d-make")
    shutil.rmtree(build, ignore_errors=True)
    try:
        build.mkdir()  # follows the umask, as the study folder it becomes
        manifest = _build(cfg, data, clips, chosen, plan, build, progress=progress)
        _move_into_place(build, out)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        for parent in created:
            with contextlib.suppress(OSError):
                parent.rmdir()
        raise
    log.info("wrote %d videos, %d trials (%d attention checks), %d participant slots to %s",
             len(manifest["stimuli"]), len(manifest["trials"]), manifest["attention"]["n_checks"],
             len(manifest["participants"]), out)
    return manifest


def _render_clips(clips: list[str], plan: D.Plan) -> list[str]:
    """The clips to render: the study's, then the practice screen's when it is not one of them."""
    return list(clips) + ([plan.practice.clip] if plan.practice and plan.practice.clip not in clips else [])


def _clip_inputs(cfg: MakeConfig, data: StudyData, plan: D.Plan, clip: str
                 ) -> tuple[np.ndarray, np.ndarray, int, np.ndarray, str, float]:
    """A clip's GT (at the video rate), audio samples and rate, neutral face (and what it is) and the gain (dB)
    that puts its middle speech level at the reference level (speech x lip design; 0 otherwise)."""
    gt = data.gt(clip)
    samples, sr = data.audio(clip)
    neutral, neutral_kind = data.neutral(clip, gt)
    level_design = plan.design == "rank" and plan.rank_over == "intensity"
    base_gain = V.level_reference_gain(samples, cfg.speech_gains_db) if level_design else 0.0
    return gt, samples, sr, neutral, neutral_kind, base_gain


def _stimulus_media(cfg: MakeConfig, data: StudyData, chosen: dict[str, dict[str, Any]], s: D.Stimulus,
                    gt: np.ndarray, samples: np.ndarray, sr: int, neutral: np.ndarray, base_gain: float
                    ) -> tuple[np.ndarray, np.ndarray, str, int]:
    """The vertices (T, V, 3) and audio of stimulus ``s`` as its video shows them, its source file and its
    frame count ``T`` (cut to ``max_seconds``); InputError where its inputs cannot make one."""
    from p3d import io

    by_name = {c.name: c for c in cfg.conditions}
    if s.condition == D.GT or by_name.get(s.condition, D.Condition("", None)).source is None:
        seq, source_file = gt, str(data.gt_dir / f"{s.clip}.npy")
    else:
        source_file = chosen[s.clip][s.condition]["file"]
        seq = io.load_vertices(source_file, data.topology)
    n = len(seq)
    if cfg.max_seconds is not None:
        n = min(n, max(2, int(cfg.max_seconds * data.fps)))
    seq = seq[:n]
    if n < 2:
        raise InputError(f"{source_file}: needs at least 2 frames for a video")
    audio = V.fit_audio(samples, sr, n, data.fps)
    verts, wav = V.apply(s.transform, seq, audio, neutral=neutral, fps=data.fps, sample_rate=sr,
                         base_gain_db=base_gain)
    return verts, wav, source_file, n


def check_stimuli(cfg: MakeConfig, data: StudyData, clips: list[str], chosen: dict[str, dict[str, Any]],
                  plan: D.Plan) -> None:
    """Make every stimulus' vertices and audio as :func:`_build` will, without rendering or writing: a prediction
    of the wrong shape, a clip shorter than a lip lag or too short for a video, a gain that would clip the audio
    or silent speech in the speech x lip design is an InputError here, before the first (slow) video is
    rendered, not after the videos before it."""
    by_clip: dict[str, list[D.Stimulus]] = {}
    for s in plan.stimuli.values():
        by_clip.setdefault(s.clip, []).append(s)
    for clip in _render_clips(clips, plan):
        gt, samples, sr, neutral, _, base_gain = _clip_inputs(cfg, data, plan, clip)
        for s in by_clip.get(clip, []):
            _stimulus_media(cfg, data, chosen, s, gt, samples, sr, neutral, base_gain)


def _build(cfg: MakeConfig, data: StudyData, clips: list[str], chosen: dict[str, dict[str, Any]], plan: D.Plan,
           out: Path, *, progress: bool | None) -> dict[str, Any]:
    """Render and write the whole study into the (empty, temporary) folder ``out``."""
    import soundfile as sf
    from tqdm.auto import tqdm

    from p3d.atomic import atomic_path, write_json
    from p3d.provenance import record
    from p3d.study.survey import write_survey
    from p3d.viz.render import frontal_camera, write_mp4

    level_design = plan.design == "rank" and plan.rank_over == "intensity"

    clip_info: dict[str, dict[str, Any]] = {}
    stimuli_out: dict[str, dict[str, Any]] = {}
    work = out / ".work"
    work.mkdir(parents=True, exist_ok=True)
    by_clip: dict[str, list[D.Stimulus]] = {}
    for s in plan.stimuli.values():
        by_clip.setdefault(s.clip, []).append(s)
    render_clips = _render_clips(clips, plan)
    bar = tqdm(total=len(plan.stimuli), desc="p3d study make", unit="video", disable=not show_progress(progress))
    try:
        for clip in render_clips:
            gt, samples, sr, neutral, neutral_kind, base_gain = _clip_inputs(cfg, data, plan, clip)
            size = (cfg.size, cfg.size)
            camera = frontal_camera(neutral, size, margin=1.3)
            clip_info[clip] = {"sources": chosen.get(clip, {}), "neutral": neutral_kind,
                               "gt_frames": int(len(gt)), "audio_seconds": round(len(samples) / sr, 4),
                               "speech_reference_gain_db": round(base_gain, 3) if level_design else None,
                               "practice_only": clip not in clips}
            for s in sorted(by_clip.get(clip, []), key=lambda x: x.id):
                verts, wav, source_file, n = _stimulus_media(cfg, data, chosen, s, gt, samples, sr, neutral,
                                                             base_gain)
                wav_path = work / f"{s.id}.wav"
                with atomic_path(wav_path) as tmp:
                    sf.write(tmp, wav, sr, subtype="PCM_16", format="WAV")
                path = out / s.file
                write_mp4(verts, path, data.fps, wav_path, faces=data.faces, size=size, camera=camera,
                          mouth_vertices=data.mouth)
                wav_path.unlink()
                stimuli_out[s.id] = {
                    "file": s.file, "sha256": _sha256(path), "clip": clip, "condition": s.condition,
                    "source_file": source_file, "transform": s.transform.to_dict(),
                    "transform_label": s.transform.label(), "role": s.role, "check_kind": s.check_kind,
                    "lip_level": s.lip_level, "speech_level": s.speech_level,
                    "lip_scale": s.transform.lip_scale,
                    "gain_db": round(s.transform.gain_db + base_gain, 3),
                    "lag_frames": V.lag_frames(s.transform.lag_ms, data.fps),
                    "n_frames": int(n), "seconds": round(n / data.fps, 4),
                }
                bar.update(1)
    finally:
        bar.close()
        shutil.rmtree(work, ignore_errors=True)

    key_to_id = {s.key: s.id for s in plan.stimuli.values()}
    trials = []
    for t in plan.trials:
        trials.append({
            "id": t.id, "kind": t.kind, "clip": t.clip, "stimuli": [key_to_id[k] for k in t.stimuli],
            "conditions": t.conditions, "model": t.model, "comparison": t.comparison,
            "speech_level": t.speech_level, "layouts": t.layouts, "attention_check": t.attention_check,
            "check_kinds": t.check_kinds, "correct": key_to_id[t.correct] if t.correct else None,
        })
    practice = None
    if plan.practice is not None:
        t = plan.practice
        practice = {"id": t.id, "kind": t.kind, "clip": t.clip, "stimuli": [key_to_id[k] for k in t.stimuli],
                    "layouts": t.layouts, "lip_scales": list(D.PRACTICE_LIP_SCALES[len(t.stimuli)]),
                    "rule": "shown before the trials to learn the page; never analysed"}
    config = cfg.to_dict()
    study_id = hashlib.sha256(json.dumps({k: v for k, v in config.items() if k not in PRESENTATION_OPTIONS},
                                         sort_keys=True).encode()).hexdigest()[:12]
    manifest = {
        "format": FORMAT,
        "study_id": study_id,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "title": cfg.title,
        "design": plan.design,
        "rank_over": plan.rank_over,
        "question": plan.question,
        "confidence": cfg.confidence if plan.design == "ab" else "off",
        "require_full_view": cfg.require_full_view,
        "fps": data.fps,
        "config": config,
        "conditions": [c.to_dict() for c in cfg.conditions] or [D.Condition(D.GT, None).to_dict()],
        "pairs": [list(p) for p in plan.pairs],
        "clips": clip_info,
        "variants": {
            "lip_scales": list(cfg.lip_scales) if level_design else None,
            "speech_gains_db": list(cfg.speech_gains_db) if level_design else None,
            "definition": VARIANT_DEFINITION if level_design else None,
            "reference_rms_dbfs": V.REFERENCE_RMS_DBFS if level_design else None,
        },
        "attention": {"n_checks": sum(t["attention_check"] for t in trials), "shift_ms": cfg.check_shift_ms,
                      "lip_lag_ms": sorted({s.transform.lag_ms for s in plan.stimuli.values()
                                            if s.role == "check" and s.transform.lag_ms}),
                      "rule": "correct = the ground-truth video: chosen (A/B) or scored highest (rank); lip lags "
                              "are shift_ms made whole frames, rounded away from zero"},
        "stimuli": stimuli_out,
        "trials": trials,
        "practice": practice,
        "consent_text": cfg.consent_text or DEFAULT_CONSENT,
        "groups": {"n": plan.n_groups,
                   "rule": "participant i (0-based) is in group i mod n; A/B: group 1 sees group 0 mirrored; "
                           "rank: cyclic Latin square"},
        "participants": plan.participants,
        "counterbalance": D.layout_counts(plan),
        "provenance": record(),
    }
    write_json(out / "manifest.json", manifest)
    (out / "responses").mkdir(exist_ok=True)
    write_survey(manifest, out, manifest_sha256=_sha256(out / "manifest.json"), single_file=cfg.single_file)
    return manifest


#: What ``make`` writes into a study folder (an ``--overwrite`` rebuild replaces these, keeps the rest).
STUDY_ENTRIES = ("manifest.json", "survey.html", "stimuli", "responses")

#: Options that change only how the study is presented, not the study: excluded from ``study_id``
#: and from the "same options" test of :func:`make_or_reuse`.
PRESENTATION_OPTIONS = {"out", "overwrite", "single_file"}


def _check_out(out: Path, overwrite: bool) -> None:
    """Refuse an output folder that cannot take the study (writes nothing)."""
    from p3d.atomic import check_out_dir

    check_out_dir(out)
    if (out / "manifest.json").exists():
        if not overwrite:
            raise InputError(f"{out} already holds a study (manifest.json); pass --overwrite to rebuild it")
        answers = [p for p in (out / "responses").glob("*") if p.is_file()] if (out / "responses").is_dir() else []
        if answers:
            raise InputError(f"{out}/responses holds {len(answers)} file(s) collected with the current manifest; "
                             "move them away before rebuilding the study")
        # `p3d study analyze`'s default output: its tables describe the current study's answers, and carried into
        # the rebuilt one they would read as that study's results
        tables = [p for p in (out / "analysis").rglob("*") if p.is_file()] if (out / "analysis").is_dir() else []
        if tables:
            raise InputError(f"{out}/analysis holds {len(tables)} file(s) analysed from the current study; "
                             "move them away before rebuilding the study")
    elif out.is_dir() and any(e.name in STUDY_ENTRIES for e in out.iterdir()):
        raise InputError(f"--out {out}: holds stimuli/, responses/ or survey.html but no manifest.json; "
                         "choose a new folder")


def _missing_parents(out: Path) -> list[Path]:
    """The ancestors of ``out`` that do not exist yet, nearest first."""
    missing = []
    parent = out.absolute().parent
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    return missing


def _move_into_place(build: Path, out: Path) -> None:
    """Put the finished study folder ``build`` at ``out``: a rename when ``out`` does not exist; else the
    entries of ``out`` that ``make`` does not write (e.g. notes; an ``analysis/`` with files is refused before,
    :func:`_check_out`) are moved into ``build``,
    and the old folder is swapped out by two renames and deleted."""
    if not out.exists():
        os.replace(build, out)
        return
    for entry in out.iterdir():
        if entry.name not in STUDY_ENTRIES:
            os.replace(entry, build / entry.name)
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.p3d-old-", dir=out.parent))
    os.replace(out, old / out.name)
    os.replace(build, out)
    shutil.rmtree(old, ignore_errors=True)


def load_manifest(study: str | Path) -> tuple[dict[str, Any], str]:
    """(manifest dict, sha256 of manifest.json) of a study folder (or of a manifest.json path)."""
    from p3d import io

    path = Path(study)
    if path.is_dir():
        path = path / "manifest.json"
    if not path.exists():
        raise InputError(f"{path}: no study manifest (run `p3d study make` first)")
    manifest = io.load_json(path)
    if manifest.get("format") != FORMAT:
        raise InputError(f"{path}: not a p3d study manifest (format {manifest.get('format')!r})")
    return manifest, _sha256(path)


def verify_study(study: str | Path) -> list[str]:
    """Problems of a study folder (empty list = intact): missing stimuli, sha256 mismatches, no survey page."""
    study = Path(study)
    manifest, _ = load_manifest(study)
    problems = []
    for sid, s in manifest["stimuli"].items():
        path = study / s["file"]
        if not path.exists():
            problems.append(f"{sid}: {path} is missing")
        elif _sha256(path) != s["sha256"]:
            problems.append(f"{sid}: {path} differs from the manifest (sha256)")
    if not (study / "survey.html").exists():
        problems.append(f"{study / 'survey.html'} is missing")
    return problems


#: Notebook 09's studies per model preset (:func:`p3d.registry.model_preset`: ``full`` builds ``cpu``'s): test clips
#: per study, video size in pixels (:attr:`MakeConfig.size`), longest video in seconds (:attr:`MakeConfig.max_seconds`;
#: None: whole clips). Small at ``smoke`` (a check that the kit runs); the paper's sizes at ``paper``.
STUDY_SIZES: dict[str, tuple[int, int, float | None]] = {"smoke": (2, 128, 1.5), "cpu": (6, 320, 4.0),
                                                         "paper": (12, 400, None)}


def study_size(preset: str) -> tuple[int, dict[str, Any]]:
    """``(clips per study, {"size": pixels, "max_seconds": seconds or None})`` of notebook 09's studies at ``preset``
    (:data:`STUDY_SIZES` of its model preset); an unknown preset is an :class:`InputError`."""
    from p3d import registry

    clips, size, max_seconds = STUDY_SIZES[registry.model_preset(preset)]
    return clips, {"size": size, "max_seconds": max_seconds}


def make_or_reuse(cfg: MakeConfig, *, progress: bool | None = None) -> dict[str, Any]:
    """:func:`make_study`, unless ``cfg.out`` already holds an intact study made with the same options:
    then its manifest is returned, nothing is rendered and only ``survey.html`` is rewritten from it (so
    collected answers stay valid). A study made with other options, or with missing or changed stimuli, is
    rebuilt only when ``responses/`` is empty (else InputError)."""
    if (Path(cfg.out) / "manifest.json").exists():
        manifest, sha = load_manifest(cfg.out)
        ignore = PRESENTATION_OPTIONS
        same = {k: v for k, v in manifest["config"].items() if k not in ignore} == \
            {k: v for k, v in cfg.to_dict().items() if k not in ignore}
        problems = [p for p in verify_study(cfg.out) if "survey.html" not in p]  # the page is rewritten anyway
        if same and not problems:
            from p3d.study.survey import write_survey

            log.info("%s: reusing the study (same options, stimuli intact); survey page refreshed", cfg.out)
            # page code may have changed; answers stay valid
            write_survey(manifest, cfg.out, manifest_sha256=sha, single_file=cfg.single_file)
            return manifest
        log.info("%s: rebuilding (%s)", cfg.out, "; ".join(problems[:3]) if problems else "options changed")
        return make_study(dataclasses.replace(cfg, overwrite=True), progress=progress)
    return make_study(cfg, progress=progress)


def study_overview(manifests: Mapping[str, Mapping[str, Any]], outs: Mapping[str, str | Path]) -> Any:
    """One row per study of ``manifests`` (``{name: manifest}``, :func:`make_or_reuse`; ``outs``: ``{name: its
    folder}``): its videos, trials, attention checks and participant codes, and the path of its survey page
    (notebook 09)."""
    import pandas as pd

    return pd.DataFrame([{"study": k, "videos": len(m["stimuli"]), "trials": len(m["trials"]),
                          "attention checks": m["attention"]["n_checks"], "participant codes": len(m["participants"]),
                          "survey page": str(Path(outs[k]) / "survey.html")} for k, m in manifests.items()])


#: Stand-in conditions made from the ground truth (:func:`write_stand_ins`).
STAND_INS: dict[str, V.Transform] = {"damped": V.Transform(lip_scale=0.5), "late": V.Transform(lag_ms=100.0)}


def write_stand_ins(corpus_root: str | Path, out: str | Path, *, split: str = "test",
                    variants: dict[str, V.Transform] | None = None) -> dict[str, Path]:
    """Stand-in "model outputs" made from the ground truth, to build and try a study without trained models.

    For each clip of ``split`` of the corpus and each variant (default :data:`STAND_INS`: ``damped``
    halves the lip motion, an expressiveness defect; ``late`` delays the lips by 100 ms, a timing
    defect), writes ``out/<variant>/<stem>.npy`` ((T, V, 3) float32 at the corpus' model rate), and
    ``out/gt_model_rate/<stem>.npy`` (the GT at that rate, so ``p3d eval`` can score the ground truth
    too), and ``out/stand_ins.json`` (each variant's transform as applied, and the frame rate). These are
    manipulations of the GT, not predictions of any model. Returns {name: folder}.
    Audio is untouched (variants with gain or audio shifts are refused: a prediction file has no audio).
    A lip lag must be whole frames at the model rate (:func:`p3d.study.variants.lag_frames`, else
    InputError), except the default ``late``'s 100 ms, which is made whole frames with a warning
    (:func:`p3d.study.variants.whole_frame_lag_ms`: 120 ms at 25 fps) and recorded in ``stand_ins.json``.
    """
    from p3d.atomic import save_npy, write_json
    from p3d.corpus import Corpus

    corpus = Corpus.open(corpus_root)
    fps = corpus.model_fps
    if variants is None:
        variants = {}
        for name, t in STAND_INS.items():
            lag = V.whole_frame_lag_ms(t.lag_ms, fps)
            if lag != t.lag_ms:
                log.warning("stand-in %r: a lip lag of %g ms is %g frames at %g fps; using %g ms (recorded in "
                            "stand_ins.json)", name, t.lag_ms, t.lag_ms * fps / 1000, fps, lag)
            variants[name] = dataclasses.replace(t, lag_ms=lag)
    variants = dict(variants)
    for name, t in variants.items():
        if t.gain_db or t.audio_shift_ms:
            raise InputError(f"stand-in {name!r}: gain and audio shifts cannot be stored in a vertex file")
        V.lag_frames(t.lag_ms, fps, what=f"stand-in {name!r}")
    folders = {name: Path(out) / name for name in [*variants, "gt_model_rate"]}
    for clip in corpus.select(split):
        gt = corpus.vertices(clip)
        ident = clip.identity
        neutral = corpus.templates[ident] if ident in corpus.templates else gt[0]
        save_npy(folders["gt_model_rate"] / f"{clip.stem}.npy", gt.astype(np.float32))
        for name, t in variants.items():
            verts, _ = V.apply(t, gt, np.zeros(1, np.float32), neutral=neutral, fps=fps, sample_rate=1)
            save_npy(folders[name] / f"{clip.stem}.npy", verts)
    write_json(Path(out) / "stand_ins.json", {
        "fps": fps, "split": split, "note": "manipulations of the ground truth, not predictions of any model",
        "variants": {name: {**t.to_dict(), "lag_frames": V.lag_frames(t.lag_ms, fps)} for name, t in variants.items()}})
    return folders


def study_sources(corpus_root: str | Path, out: str | Path, predictions: dict[str, str | Path] | None = None
                  ) -> tuple[dict[str, Path], Path]:
    """The prediction folders a study compares and the GT at the model rate (``p3d eval``'s reference): with
    ``predictions`` (``{"MODEL/VARIANT": folder}``) those folders, and the GT written under ``out`` alone; without,
    the stand-ins of :func:`write_stand_ins` (:data:`STAND_INS`, manipulations of the GT) under ``out``.
    Returns ``({name: folder}, GT folder)``."""
    if predictions:
        return ({name: Path(folder) for name, folder in predictions.items()},
                write_stand_ins(corpus_root, out, variants={})["gt_model_rate"])
    stand_ins = write_stand_ins(corpus_root, out)
    reference = stand_ins.pop("gt_model_rate")
    return stand_ins, reference


#: The metrics of every study condition (notebook 09): LVE, MTM and the official PLRS, those Table S3 correlates with
#: the human rankings, and PLRS-c beside PLRS (beyond the paper); each where the inputs allow it
#: (:func:`p3d.evaluate.computable_metrics`).
CONDITION_METRICS: tuple[str, ...] = ("lve", "mtm", "plrs", "plrs_calibrated")
#: Bootstrap resamples of each condition's evaluation (the values, not their intervals, enter Table S3).
CONDITION_RESAMPLES = 500


def condition_metrics(corpus_root: str | Path, folders: dict[str, str | Path], out: str | Path, *,
                      evaluator: str | Path | None = None, seed: int = 0, progress: bool | None = None
                      ) -> tuple[dict[str, Path], Any]:
    """``p3d eval`` of each study condition's prediction folder against the corpus' GT (at its model and capture
    rates; audio and topology from the corpus): :data:`CONDITION_METRICS` that the folder allows, PLRS with the
    ``evaluator`` checkpoint when it exists (else none), :data:`CONDITION_RESAMPLES` resamples, ``seed``. Each
    report is written to ``out/<name>`` (``/`` in a name as ``__``), the folders :func:`p3d.study.analyze.analyze`
    reads as ``metrics``. Returns ``({name: report folder}, one row per condition: condition and each metric's
    value as p3d eval reports it (:func:`p3d.evaluate.summary_values`; LVE pooled over frames, in m², column
    ``LVE (m²)``))``."""
    import pandas as pd

    from p3d.corpus import Corpus
    from p3d.evaluate import EvalConfig, computable_metrics, evaluate, summary_values, write_report

    corpus_root = Path(corpus_root)
    corpus = Corpus.open(corpus_root)
    checkpoint = Path(evaluator) if evaluator is not None and Path(evaluator).exists() else None
    metric_dirs, values = {}, {}
    for name, folder in folders.items():
        cfg = EvalConfig(pred=folder, gt=corpus_root, audio=corpus_root, fps=corpus.model_fps, gt_fps=corpus.fps,
                         topology=str(corpus_root / "topology.npz"), bootstrap_resamples=CONDITION_RESAMPLES, seed=seed,
                         plrs_checkpoint=checkpoint)
        # PLRS-c only when the folder covers enough GT clips for its background
        cfg.metrics = computable_metrics(cfg, CONDITION_METRICS)
        report = evaluate(cfg, progress=progress)
        metric_dirs[name] = Path(out) / name.replace("/", "__")
        write_report(report, metric_dirs[name])
        values[name] = summary_values(report.summary)
    summary = pd.DataFrame([{"condition": k, **v} for k, v in values.items()]).rename(columns={"lve": "LVE (m²)"})
    return metric_dirs, summary
