"""``p3d predict``: a talker's predictions for a split, in the official file layout, ready for ``p3d eval``.

    p3d predict --run RUN_DIR --split test --out DIR [--data DIR[,DIR]] [--device auto|cpu|cuda]
    p3d predict --checkpoint vocaset.pth --model faceformer --data VOCASET_DIR --out DIR

``--checkpoint``: an **official released checkpoint** of FaceFormer (``vocaset.pth``, ``biwi.pth``),
CodeTalker (``vocaset_stage2.pth.tar``, ``biwi_stage2.pth.tar``; ``--stage1`` optionally replaces its
VQ-VAE) or SelfTalk (``vocaset.pth``, ``BIWI.pth``), read weights-only and loaded into p3d's model by the
key map of :mod:`p3d.models.official_baselines`. The style conditions are the official training
subjects (the 8 VOCASET ``FaceTalk_*`` identities, or BIWI's F2 F3 F4 M3 M4 M5) unless ``--styles``
names them. As the official ``test.py`` / ``test_pred.py``, a clip of a training subject (BIWI Test-A,
F2..M5 e37-e40) is predicted under its own speaker's condition only, a clip of an unseen subject under
every training subject. The official SelfTalk has no style input: it writes one ``OUT/<clip>.npy`` per clip, as its
``test.py`` (``--styles`` is refused). ``--data`` is required. The frame count follows the official
``predict`` (from the audio: ``--frames audio``, the default with ``--checkpoint``) or the ground truth
(``--frames gt``).

Reads ``RUN_DIR/final.pt`` (``p3d train talker``) and ``RUN_DIR/config.json`` (the style identities, the
training corpora, the frame rate). For every clip of ``--split`` of the corpora (``--data``; default: the
training corpora, those that have the split) and **every training identity** as the speaking-style
condition, it writes ``OUT/<clip>_condition_<train_identity>.npy``: (T, V, 3) float32 absolute vertices at
the model frame rate. This is the official protocol of FaceFormer, CodeTalker and SelfTalk on VOCASET
(test identities are unseen, so each test sentence is predicted once per training-subject condition; 8
files per sentence there). ``--conditions-per-clip k`` (with ``--run``) predicts each clip under k training
identities of the run's first training corpus only, rotating clip by clip (k files per clip). ``T`` is the
clip's ground-truth frame count at the model frame rate when its vertices exist, else
``floor(audio duration * fps)``.

Files are written atomically, one per (clip, condition); an existing file is kept (re-running resumes),
unless ``--overwrite``. ``OUT/predictions.json`` records what made them (the checkpoint's SHA-256, the
split, corpora, frame rule and conditions): a folder holding predictions of another checkpoint or settings,
or ``.npy`` files these predictions would not write (``p3d eval`` reads every one), is refused before any
prediction, so two models' files never mix; ``--overwrite`` recomputes every file of the same set. ``--batch-size N`` (default 16) predicts N (clip, condition) pairs per batched pass of
the model (``Talker.predict_batch``, clips sorted by length; each file as the one-by-one prediction up to
float32 rounding); ``--batch-size 1`` calls ``predict`` once per file. Evaluate with ``p3d eval --pred OUT
--gt CORPUS --audio CORPUS --fps <model fps> --gt-fps <corpus fps> --topology CORPUS/topology.npz``.
"""
from __future__ import annotations

import argparse
import logging
import numbers
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from p3d.device import resolve_device
from p3d.errors import InputError
from p3d.io import PREDICTIONS_RECORD, load_json
from p3d.progress import show_progress
from p3d.registry import MODELS

log = logging.getLogger(__name__)


def read_run(run: str | os.PathLike[str]) -> dict[str, Any]:
    """``RUN_DIR/config.json`` of a talker run (checked)."""
    cfg_path = Path(run) / "config.json"
    if not cfg_path.exists():
        raise InputError(f"--run {run}: no config.json (not a `p3d train talker` run folder)")
    cfg = load_json(cfg_path)
    if cfg.get("kind") != "talker" or not cfg.get("styles"):
        raise InputError(f"{cfg_path}: not a talker run (kind {cfg.get('kind')!r}); predict needs `p3d train talker`")
    if not (Path(run) / "final.pt").exists():
        raise InputError(f"--run {run}: no final.pt (the training has not finished)")
    return cfg


def n_frames_of(corpus: Any, clip: Any, n_samples: int, sample_rate: int) -> int:
    """Ground-truth frame count at the model rate, or ``floor(duration * fps)`` without vertices."""
    if corpus.vertices_path(clip).exists():
        return corpus.n_frames(clip)
    return max(1, int(n_samples * corpus.model_fps // sample_rate))


def _jobs(corpora: list[Any], split: str, model: Any, fps: float, explicit: bool, source: str) -> list[Any]:
    """(corpus, clip) pairs of ``split``, checked against the model (vertex count, frame rate)."""
    jobs = []
    for c in corpora:
        if split not in {clip.split for clip in c.clips}:
            if explicit:
                raise InputError(f"{c.root}: no clips in split {split!r}")
            log.info("%s has no %r split; skipped", c.root, split)
            continue
        if c.topology.n_vertices != model.n_vertices:
            raise InputError(f"{c.root}: {c.topology.n_vertices} vertices per frame, the model predicts "
                             f"{model.n_vertices}")
        if abs(c.model_fps - fps) > 1e-9:
            raise InputError(f"{c.root}: model frame rate {c.model_fps:g} fps, {source} runs at {fps:g} fps")
        jobs.extend((c, clip) for clip in c.select(split))
    return jobs


#: (clip, style) predictions per batched pass of ``p3d predict`` (``--batch-size``; 1: one by one).
BATCH_SIZE = 16

#: The version of what a checkpoint predicts (the talkers' ``predict``/``predict_batch``, the frame rules), recorded
#: in :data:`p3d.io.PREDICTIONS_RECORD`: raise it when a change makes a checkpoint's predictions differ, so that
#: predictions written before are refused by ``p3d predict`` (``--overwrite`` recomputes them) and redone by the
#: experiment grid instead of kept. A record without it was written at version 1. Version 2: wav2vec2 with two
#: features per frame (25 fps) repeats the last complete pair, and the official SelfTalk runs wav2vec2's transformer
#: on every 50 Hz feature (its own code; BIWI).
PREDICTION_VERSION = 2


def check_batch_size(batch_size: Any) -> int:
    """``--batch-size`` as a positive int."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise InputError(f"--batch-size: expected a positive number of predictions per pass, got {batch_size}")
    return int(batch_size)


def rotating_conditions(n_clips: int, pool: Sequence[int], per_clip: int) -> list[list[int]]:
    """The style indices each of ``n_clips`` clips is predicted under when not every training identity is used:
    clip ``j`` takes ``pool[(j * per_clip + i) % len(pool)]`` for ``i < per_clip``, so the conditions rotate
    over the pool and every style conditions about as many clips (deterministic in the clips' order)."""
    if not pool:
        raise InputError("conditions: no training identity to condition on")
    if isinstance(per_clip, bool) or not isinstance(per_clip, numbers.Integral) or not 1 <= per_clip <= len(pool):
        raise InputError(f"--conditions-per-clip: expected 1..{len(pool)} training identities per clip, got {per_clip}")
    return [[pool[(j * per_clip + i) % len(pool)] for i in range(per_clip)] for j in range(n_clips)]


def check_prediction_folder(out: Path, names: Sequence[str], source: dict[str, Any], overwrite: bool,
                            corpora: dict[str, Any] | None = None) -> None:
    """Refuse ``out`` when the predictions it already holds are not those ``source`` would write: ``.npy`` files
    outside ``names`` (another split, corpus or condition set: ``p3d eval`` would read them too), or files of
    ``names`` kept (no ``overwrite``) whose :data:`PREDICTIONS_RECORD` is missing or names another ``source``
    (another checkpoint, split, corpus, frame rule or conditions), or whose corpora changed since
    (``corpora``: path -> :func:`p3d.corpus.corpus_fingerprint`, compared where the record has them, by
    :func:`p3d.corpus.fingerprint_changes`)."""
    from p3d.corpus import fingerprint_changes
    from p3d.io import is_ignored_name

    if not out.is_dir():
        return
    # hidden names are nobody's predictions (p3d eval ignores them too): the atomic temporary
    # (.<clip>_condition_<id>.npy.tmp-XXXX.npy) that a killed run leaves made every later run refuse the folder
    present = {p.name for p in out.glob("*.npy") if not is_ignored_name(p.name)}
    others = sorted(present - set(names))
    if others:
        raise InputError(f"{out}: holds {len(others)} .npy file(s) these predictions would not write (e.g. "
                         f"{others[0]}: another split, corpus or --conditions-per-clip); p3d eval reads every "
                         "one, so give an empty or new --out")
    if overwrite or not present:
        return
    record = out / PREDICTIONS_RECORD
    if not record.is_file():
        raise InputError(f"{out}: holds predictions without a record of the model that made them "
                         f"({PREDICTIONS_RECORD}); --overwrite recomputes them, or give another --out")
    saved = load_json(record)
    recorded = saved.get("source", {})
    if "prediction_version" in source:  # a record from before the version was recorded: version 1
        recorded = {"prediction_version": 1, **recorded}
    changed = [k for k in dict.fromkeys([*recorded, *source]) if recorded.get(k) != source.get(k)]
    if changed:
        raise InputError(f"{out}: holds predictions of another model or settings ({', '.join(changed)} differ); "
                         "--overwrite recomputes them, or give another --out")
    then = saved.get("corpora") or {}
    regenerated = {p: changes for p, fp in (corpora or {}).items()
                   if p in then and (changes := fingerprint_changes(then[p], fp))}
    if regenerated:
        p, changes = next(iter(regenerated.items()))
        raise InputError(f"{out}: holds predictions made from {p} before it was regenerated or replaced (its "
                         f"{', '.join(changes)} differ from the record); --overwrite recomputes them, or give "
                         "another --out")


def _write_predictions(model: Any, styles: list[str | None], jobs: list[Any], out: Path, dev: Any, overwrite: bool,
                       progress: bool | None, frames: str = "gt", batch_size: int = BATCH_SIZE,
                       conditions: Sequence[Sequence[int]] | None = None,
                       source: dict[str, Any] | None = None) -> list[Path]:
    """Predict every (clip, style) pair into ``out/<clip>_condition_<style>.npy``; existing files are kept.
    ``conditions``: per job, the style indices to predict (None: every style, the official protocol). A style
    named None is a model without style input: its file is ``out/<clip>.npy`` (SelfTalk's ``test.py``).
    ``source``: what makes these predictions (checkpoint hash and settings), recorded in
    :data:`PREDICTIONS_RECORD` with the fingerprint of each corpus predicted (``corpora``, what ``p3d eval``
    checks its ``--gt`` and ``--audio`` against) and checked against a folder's earlier predictions
    (:func:`check_prediction_folder`) before the first one; with ``overwrite`` the record is written only once
    every file is recomputed, so an interrupted overwrite is never resumed as the new model's.

    Every clip is checked (template, audio file, frame count) before the first prediction, and ``frames="audio"``
    (the official frame count, from the wav2vec2 audio encoder) before anything is written. The pairs still to
    write are sorted by frame count (clips of similar length share a batch: less padding) and predicted
    ``batch_size`` at a time with ``model.predict_batch`` (each as ``model.predict`` on it alone, float32
    rounding aside; the styles of one clip share its audio tensor, so its audio encoding); ``batch_size=1``
    calls ``model.predict`` one pair at a time. Returns the paths in (clip, style) order.
    """
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from p3d.atomic import save_npy, write_json
    from p3d.corpus import corpus_fingerprint
    from p3d.io import load_audio
    from p3d.talker_data import AUDIO_RATE, check_durations

    batch_size = check_batch_size(batch_size)
    if frames == "audio":  # before anything is written (was: predictions.json, then the refusal at the first clip)
        from p3d.models.official_baselines import official_n_frames

        try:
            official_n_frames(model, AUDIO_RATE)  # the official rule counts wav2vec2's CNN features
        except InputError as exc:
            raise InputError(f"--frames audio: {exc}; use --frames gt") from None

    loaded: dict[Path, np.ndarray] = {}  # audio read to count frames, kept for its batch (read once)

    def load_clip_audio(corpus: Any, clip: Any) -> np.ndarray:
        path = corpus.wav_path(clip)
        if path not in loaded:
            loaded[path] = load_audio(path, sr=AUDIO_RATE)[0]
        return loaded[path]

    def frame_count(corpus: Any, clip: Any) -> int:
        if frames == "gt" and corpus.vertices_path(clip).exists():
            n = corpus.n_frames(clip)  # the audio must be as long: the talker stretches its features to n frames
            check_durations(corpus.wav_path(clip), load_clip_audio(corpus, clip).size / AUDIO_RATE,
                            corpus.vertices_path(clip), n, corpus.model_fps, corpus.fps)
            return n
        n_samples = load_clip_audio(corpus, clip).size
        if frames == "audio":
            from p3d.models.official_baselines import official_n_frames

            return official_n_frames(model, n_samples)
        return n_frames_of(corpus, clip, n_samples, AUDIO_RATE)

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    pending: list[tuple[int, int, Path]] = []  # (job, style, file) still to predict
    owner: dict[str, Path] = {}  # clip stem -> the corpus whose clip it is: one file name per clip and condition
    for j, (corpus, clip) in enumerate(jobs):
        if clip.stem in owner:
            same = owner[clip.stem].resolve() == Path(corpus.root).resolve()
            twice = "is given twice, with" if same else f"and {corpus.root} both hold"
            raise InputError(f"--data: {owner[clip.stem]} {twice} clip {clip.stem}; its predictions would share one "
                             "file per condition, so predict each corpus into its own --out")
        owner[clip.stem] = Path(corpus.root)
        if clip.identity not in corpus.templates:
            raise InputError(f"{corpus.root / 'templates.pkl'}: no template for identity {clip.identity!r}")
        wav = corpus.wav_path(clip)
        if not wav.exists():
            raise InputError(f"{wav}: audio file missing for clip {clip.stem}")
        for style in (range(len(styles)) if conditions is None else conditions[j]):
            name = styles[style]
            path = out / (f"{clip.stem}.npy" if name is None else f"{clip.stem}_condition_{name}.npy")
            written.append(path)
            if overwrite or not path.exists():
                pending.append((j, style, path))
    source = {**(source or {}), "frames": frames, "styles": list(styles), "prediction_version": PREDICTION_VERSION}
    corpora = {str(Path(c.root).resolve()): corpus_fingerprint(c.root) for c in {id(c): c for c, _ in jobs}.values()}
    check_prediction_folder(out, [p.name for p in written], source, overwrite, corpora)
    record = out / PREDICTIONS_RECORD
    if overwrite:
        record.unlink(missing_ok=True)
    else:
        write_json(record, {"source": source, "corpora": corpora})
    lengths = {j: frame_count(*jobs[j]) for j in sorted({j for j, _, _ in pending})}
    pending.sort(key=lambda item: (lengths[item[0]], item[0], item[1]))  # stable: a clip's styles stay together

    bar = tqdm(total=len(written), initial=len(written) - len(pending), desc="p3d predict", unit="file",
               disable=not show_progress(progress))
    for start in range(0, len(pending), batch_size):
        chunk = pending[start:start + batch_size]
        audio: dict[int, torch.Tensor] = {}  # one tensor per clip: its styles share the audio encoding
        template: dict[int, torch.Tensor] = {}
        for j, _, _ in chunk:
            if j not in audio:
                corpus, clip = jobs[j]
                audio[j] = torch.from_numpy(load_clip_audio(corpus, clip)).to(dev)
                loaded.pop(corpus.wav_path(clip), None)  # its pairs are consecutive (one split by a batch end is re-read)
                template[j] = torch.from_numpy(np.asarray(corpus.templates[clip.identity], dtype=np.float32)).to(dev)
        args = ([audio[j] for j, _, _ in chunk], [template[j] for j, _, _ in chunk], [s for _, s, _ in chunk],
                [lengths[j] for j, _, _ in chunk])
        preds = model.predict_batch(*args) if batch_size > 1 else [model.predict(*(a[0] for a in args))]
        for (_, _, path), pred in zip(chunk, preds):
            save_npy(path, pred.detach().cpu().numpy().astype(np.float32))
            bar.update(1)
    bar.close()
    if overwrite:
        write_json(record, {"source": source, "corpora": corpora})
    if len(pending) < len(written):
        log.info("%d of %d predictions computed; %d kept from an earlier run of the same model and settings",
                 len(pending), len(written), len(written) - len(pending))
    return written


def predict_official(
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    data: Sequence[str | os.PathLike[str]],
    *,
    model: str | None = None,
    split: str = "test",
    dataset: str | None = None,
    styles: Sequence[str] | None = None,
    stage1: str | os.PathLike[str] | None = None,
    frames: str = "audio",
    device: str = "auto",
    overwrite: bool = False,
    progress: bool | None = None,
    batch_size: int = BATCH_SIZE,
) -> list[Path]:
    """Predictions of an official released checkpoint (module docstring) for every (clip, style)
    (``batch_size`` pairs per batched pass, :func:`_write_predictions`)."""
    from p3d.atomic import check_out_dir
    from p3d.corpus import Corpus
    from p3d.models.official_baselines import default_styles, load_official
    from p3d.provenance import file_sha256

    if frames not in ("audio", "gt"):
        raise InputError(f"--frames: choose audio or gt, got {frames!r}")
    if not data:
        raise InputError("--data: an official checkpoint needs the corpus folder(s) to predict")
    if styles is not None and not list(styles):  # it meant the default names, as styles=None does
        raise InputError("--styles: an empty list of names (None: the official training subjects)")
    check_out_dir(out)
    batch_size = check_batch_size(batch_size)
    corpora = [Corpus.open(r) for r in data]  # checked before the (large) checkpoint is read
    dev = resolve_device(device)
    talker = load_official(checkpoint, model, dataset=dataset, stage1=stage1).to(dev).eval()
    if getattr(talker, "stage", "speech") != "speech":  # load_official reads it for its VQ-VAE, the speech side random
        raise InputError(f"{checkpoint}: a CodeTalker stage-1 file (the VQ-VAE alone, no speech model); predict "
                         "with the stage-2 file (vocaset_stage2.pth.tar, biwi_stage2.pth.tar), --stage1 to replace "
                         "its VQ-VAE")
    names: list[str | None]
    if not getattr(talker.config, "style_embedding", True):  # SelfTalk: one prediction per clip, <clip>.npy
        if styles:
            raise InputError(f"--styles: {checkpoint} ({type(talker).__name__}) has no speaking-style input; its "
                             "predictions are one <clip>.npy per clip, leave --styles out")
        names = [None]
    else:
        # the official subjects of the model's own dataset (BIWI at 25 fps): 8 styles at 25 fps are not VOCASET's
        found = list(styles) if styles else default_styles(talker, "BIWI" if float(talker.config.fps) == 25 else
                                                           "vocaset")
        if found is None or len(found) != talker.n_styles:
            raise InputError(f"--styles: {checkpoint} has {talker.n_styles} style conditions; name them in order "
                             f"(comma-separated training subjects){f', got {len(found)}' if found else ''}")
        # each name is a file name part (<clip>_condition_<name>.npy): a repeated one made two conditions write one
        # file
        bad = [n for n in found if not n or any(sep in n for sep in filter(None, ("/", os.sep, os.altsep)))]
        if bad or len(set(found)) != len(found):
            raise InputError(f"--styles: give each of the {talker.n_styles} style conditions its own name, without "
                             f"path separators, got {','.join(found)}")
        names = list(found)
    jobs = _jobs(corpora, split, talker, float(talker.config.fps), True, str(checkpoint))
    if not jobs:
        raise InputError(f"split {split!r}: no clips in {', '.join(str(r) for r in data)}")
    # the official test loops: a seen speaker under its own condition only, an unseen one under every training subject
    every = list(range(len(names)))
    conditions = [[names.index(clip.identity)] if clip.identity in names else every for _, clip in jobs]
    source = {"checkpoint_sha256": file_sha256(checkpoint), "stage1_sha256": file_sha256(stage1) if stage1 else None,
              "model": type(talker).__name__, "split": split, "data": [str(Path(r).resolve()) for r in data]}
    return _write_predictions(talker, list(names), jobs, Path(out), dev, overwrite, progress, frames, batch_size,
                              conditions, source=source)


def predict_split(
    run: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    split: str = "test",
    data: Sequence[str | os.PathLike[str]] | None = None,
    device: str = "auto",
    overwrite: bool = False,
    progress: bool | None = None,
    frames: str = "gt",
    batch_size: int = BATCH_SIZE,
    conditions_per_clip: int | None = None,
) -> list[Path]:
    """Write the predictions of every (clip of ``split``, training identity); return their paths
    (``batch_size`` pairs per batched pass, :func:`_write_predictions`; 1: one ``predict`` call per pair).

    ``conditions_per_clip`` (None: every training identity, the official VOCASET protocol): predict each clip
    under that many training identities of the run's **first** training corpus only (the ones every run of a
    p3d experiment grid shares, e.g. synth-voca's), rotating over them clip by clip
    (:func:`rotating_conditions`): paired across runs, a fraction of the cost."""
    from p3d.atomic import check_out_dir
    from p3d.corpus import Corpus
    from p3d.models import load_model
    from p3d.provenance import file_sha256

    if frames not in ("audio", "gt"):
        raise InputError(f"--frames: choose audio or gt, got {frames!r}")
    batch_size = check_batch_size(batch_size)
    if data is not None:
        data = list(data)
        if not data:  # it meant the run's training corpora, as data=None does
            raise InputError("--data: an empty list of corpus folders (None: the run's training corpora)")
    check_out_dir(out)

    cfg = read_run(run)
    styles: list[str] = list(cfg["styles"])
    dev = resolve_device(device)
    model = load_model(Path(run) / "final.pt", map_location=dev).to(dev).eval()
    if model.n_styles != len(styles):
        raise InputError(f"--run {run}: final.pt has {model.n_styles} styles, config.json lists {len(styles)}")
    roots = [Path(p) for p in (data if data else cfg.get("train_data", []))]
    if not roots:
        raise InputError("--data: no corpus given and the run config names none")
    corpora = [Corpus.open(r) for r in roots]
    jobs = _jobs(corpora, split, model, float(cfg.get("fps", corpora[0].model_fps)), bool(data), "the run")
    if not jobs:
        raise InputError(f"split {split!r}: no clips in {', '.join(str(r) for r in roots)}")
    conditions = None
    if conditions_per_clip is not None:
        first = cfg.get("train_data", [])[:1]
        if not first:
            raise InputError(f"--conditions-per-clip: {run}/config.json names no training corpus")
        own = set(Corpus.open(first[0]).identities("train"))
        pool = [i for i, name in enumerate(styles) if name in own]
        if not pool:
            raise InputError(f"--conditions-per-clip: none of the run's style identities is a training identity of "
                             f"its first training corpus {first[0]} (was the corpus regenerated?)")
        conditions = rotating_conditions(len(jobs), pool, conditions_per_clip)
    source = {"checkpoint_sha256": file_sha256(Path(run) / "final.pt"), "split": split,
              "data": [str(r.resolve()) for r in roots], "conditions_per_clip": conditions_per_clip}
    return _write_predictions(model, styles, jobs, Path(out), dev, overwrite, progress, frames, batch_size,
                              conditions, source=source)


def register(subparsers: Any) -> None:
    from p3d.cli import help_text

    p = subparsers.add_parser("predict", help="predict a split with a trained talker (official file names)",
                              description=help_text(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", type=Path, help="run folder of `p3d train talker` (final.pt, config.json)")
    src.add_argument("--checkpoint", type=Path,
                     help="an official FaceFormer / CodeTalker (stage 2) / SelfTalk checkpoint, as released")
    p.add_argument("--model", choices=MODELS, default=None,
                   help="with --checkpoint: the model it holds (checked; default: recognised from its keys)")
    p.add_argument("--dataset", choices=("vocaset", "BIWI"), default=None,
                   help="with --checkpoint: the official variant (default: BIWI for 23370 vertices, else vocaset)")
    p.add_argument("--styles", default=None,
                   help="with --checkpoint: the style conditions' names in order, comma-separated "
                        "(default: the official training subjects)")
    p.add_argument("--stage1", type=Path, default=None,
                   help="with --checkpoint and CodeTalker: a stage-1 file whose VQ-VAE replaces the stage-2 file's")
    p.add_argument("--frames", choices=("audio", "gt"), default=None,
                   help="frame count: from the audio as the official predict (default with --checkpoint) or the "
                        "ground truth (default with --run)")
    p.add_argument("--split", default="test", help="split to predict (default test)")
    p.add_argument("--out", type=Path, required=True, help="output folder of <clip>_condition_<identity>.npy files")
    p.add_argument("--data", default=None,
                   help="corpus folder(s), comma-separated (default: the run's training corpora)")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:N")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads on CPU (default 1)")
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE,
                   help=f"(clip, style) predictions per batched pass, clips sorted by length (default {BATCH_SIZE}; "
                        f"1: one predict call each)")
    p.add_argument("--conditions-per-clip", type=int, default=None,
                   help="with --run: predict each clip under this many training identities of the run's first "
                        "training corpus, rotating clip by clip (default: every training identity)")
    p.add_argument("--overwrite", action="store_true", help="recompute files that exist")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _comma_list(text: str | None, option: str, default: str) -> list[str] | None:
    """A comma-separated option's items (None: the option not given, its ``default`` applies); InputError for
    an explicitly empty list (``--data ,`` or ``--data ""`` silently meant the default) and for an empty item
    (``--data A,,B``: :func:`p3d.cli.comma_items`)."""
    from p3d.cli import comma_items

    if text is None:
        return None
    items = comma_items(text, option)
    if not items:
        raise InputError(f"{option} {text!r}: an empty list; leave {option} out for {default}")
    return items


def run(args: argparse.Namespace) -> int:
    from p3d.device import set_threads

    set_threads(args.threads)
    data = _comma_list(args.data, "--data", "the run's training corpora")
    styles = _comma_list(args.styles, "--styles", "the official training subjects")
    if args.checkpoint is not None:
        if args.conditions_per_clip is not None:
            raise InputError("--conditions-per-clip goes with --run (a p3d run), not --checkpoint")
        files = predict_official(args.checkpoint, args.out, data or [], model=args.model, split=args.split,
                                 dataset=args.dataset, styles=styles, stage1=args.stage1,
                                 frames=args.frames or "audio", device=args.device, overwrite=args.overwrite,
                                 progress=not args.no_progress, batch_size=args.batch_size)
    else:
        if args.model or args.dataset or styles or args.stage1:
            raise InputError("--model/--dataset/--styles/--stage1 go with --checkpoint (an official checkpoint), "
                             "not --run")
        files = predict_split(args.run, args.out, split=args.split, data=data, device=args.device,
                              overwrite=args.overwrite, progress=not args.no_progress, frames=args.frames or "gt",
                              batch_size=args.batch_size, conditions_per_clip=args.conditions_per_clip)
    log.info("%d predictions in %s", len(files), args.out)
    return 0
