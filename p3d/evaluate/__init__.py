"""``p3d eval``: evaluate a folder of predicted vertex sequences against ground truth.

The official protocol (paper Sec. 6, the released evaluation scripts): one ground-truth clip may be
compared with many predictions, one per conditioning training identity, named
``<gt_stem>_condition_<train_identity>.npy`` (SelfTalk's suffix-less ``<gt_stem>.npy`` too). Ground
truth recorded at ``gt_fps`` is subsampled to the predictions' ``fps`` (VOCASET: 60 -> 30 fps, the
official ``[::2]``). A processed-VOCASET GT folder (``vertices_npy/`` or a root holding it, VOCASET clip names) or
``--dataset vocaset`` means 60 fps GT unless ``--gt-fps`` says otherwise; predictions default to 30 fps.

Frame counts are checked for every pair before any metric is computed (a first pass that reads only
the ``.npy`` and ``.wav`` headers). After the GT subsampling, a prediction whose length differs from
its GT's by about an integer factor (2, 3, ... or 1/2, 1/3, ...: a wrong frame rate) or by more than
``max(2 frames, 10 %)`` is refused (exit 2, naming both counts, the file and ``--gt-fps``), unless both
``--fps`` and ``--gt-fps`` were given explicitly; smaller differences are truncated to the shorter
sequence for LVE and FDD, as the official code does, and counted (MTM's DDTW, the lip intensity and
PLRS take each sequence whole). The same rule compares each clip's audio duration
with its GT duration when SLCC or PLRS is computed; the predictions of a clip whose wav is silent (RMS below
``SILENT_RMS``) are left out of SLCC, PLRS, PLRS-c and PLRS-e (NaN in ``per_clip.csv``, a note in each) and
scored for the other metrics, which therefore do not depend on ``--metrics``.

Predictions written by ``p3d predict`` carry a record of the corpora they were made from
(``predictions.json``, :func:`plan.check_corpus_source`): a ``--gt`` or ``--audio`` corpus (or the corpus
holding ``--templates``) regenerated or replaced at the same path since, or another synthetic corpus (another
preset, seed or generator), is refused, since its clips (faces) of the same names are other clips; a folder
elsewhere without ``meta.json`` is matched by name with a warning, and ``summary.json`` says which
(``config.gt_check``, ``config.audio_check``, ``config.templates_check``).

Without ``--gt`` only PLRS (and PLRS-c, below) is computed, from the predictions and their audio, as the
official ``evaluate_PLRS.py`` computes PLRS: each prediction is paired with ``<gt_stem>.wav``; a prediction
folder that is (or holds) a processed-VOCASET ``vertices_npy/`` with VOCASET names is ground truth read at 60 fps and
subsampled ``[::2]`` (unless ``--fps`` gives its rate); the length rule then compares each prediction
with its audio's duration. PLRS reads channel 0 of the wav (:func:`p3d.audio.load_speech_audio`'s
choice, the official one); SLCC's speech intensity the channel mean.

PLRS-c (``plrs_calibrated``; beyond the paper, :func:`p3d.metrics.plrs_calibrated`) is PLRS' positive-pair
cosine minus the mean cosine of the same mesh windows to *other* clips' speech (chance 0); its background for a
clip is the speech of every other evaluated GT clip with non-silent audio (every 5th PLRS speech window,
encoded once per clip before the scoring pass; only the embeddings are kept). It is in the default metrics
with ``--plrs-checkpoint`` and ``--audio``, with or without ``--gt``; with fewer than 3 such GT clips it is
reported as not computed (an explicit ``--metrics plrs_calibrated`` is then exit 2). PLRS-e (``plrs_enrolled``,
``--intensity-weight MU``; :func:`p3d.metrics.plrs_enrolled`) is PLRS-c minus MU times the prediction's lip
amplitude mismatch with the speaker's other evaluated GT clips (:func:`scoring.plrs_enrolled_column`); it needs
PLRS-c, ``--gt`` and ``--templates`` (:func:`config.check_enrolled`). ``--dataset biwi`` reads BIWI
names (``F2_e37[_condition_M3]``) and defaults both rates to 25 fps.

Per prediction the command computes LVE, FDD, MTM and the lip intensity, and the motion diagnostics
of :data:`DIAGNOSTIC_COLUMNS` (prediction and GT; ``--no-diagnostics`` leaves them out); across predictions SLCC
(with the data's own SLCC from the ground truth and the Δ between them). It writes
``OUT/per_clip.csv`` and ``OUT/summary.json`` (LVE pooled over every scored frame of every prediction, as
the official scripts average it, the other metrics over predictions, as theirs; each metric with a 95% bootstrap
CI that resamples GT clips, since the predictions of one clip under several conditions are not independent; ``n_clips``
and ``n_predictions``; counts of predictions evaluated, truncated and skipped with reasons; the
configuration and provenance) and with ``--plots`` the MTM matching plot of every prediction
(paper Fig. S4) under ``OUT/plots/``. The predictions are processed one GT clip at a time, so memory does not
grow with the number of clips. The outputs of one run are written together (see :func:`write_report`).
"""
from __future__ import annotations

from typing import Any

from p3d.evaluate import cli as _cli
from p3d.evaluate.cli import main, run
from p3d.evaluate.config import (
    ALL_METRICS,
    BIWI_FPS,
    DEFAULT_FPS,
    DIAGNOSTIC_COLUMNS,
    FACTOR_TOLERANCE,
    GT_METRICS,
    LENGTH_TOLERANCE_FRACTION,
    LENGTH_TOLERANCE_FRAMES,
    MIN_BACKGROUND_CLIPS,
    PLRS_METRICS,
    SILENT_RMS,
    VOCASET_GT_FPS,
    EvalConfig,
    EvalReport,
    FrameRates,
    length_mismatch,
    plan_background,
    plan_metrics,
    resolve_metrics,
    strided_length,
)
from p3d.evaluate.plan import check_lengths, computable_metrics, is_vocaset_gt_folder, parse_name, resolve_rates
from p3d.evaluate.report import check_out_dir, check_report_dir, write_report
from p3d.evaluate.scoring import _plrs, evaluate, motion_diagnostics  # _plrs: called directly by the tests
from p3d.evaluate.summary import format_summary, summary_values

__all__ = [
    "ALL_METRICS", "BIWI_FPS", "DEFAULT_FPS", "DIAGNOSTIC_COLUMNS", "FACTOR_TOLERANCE",
    "GT_METRICS", "LENGTH_TOLERANCE_FRACTION", "LENGTH_TOLERANCE_FRAMES", "MIN_BACKGROUND_CLIPS", "PLRS_METRICS",
    "SILENT_RMS", "VOCASET_GT_FPS",
    "EvalConfig", "EvalReport", "FrameRates", "check_lengths", "check_out_dir", "check_report_dir",
    "computable_metrics", "evaluate",
    "format_summary", "is_vocaset_gt_folder", "length_mismatch", "main", "motion_diagnostics", "parse_name", "plan_background",
    "plan_metrics",
    "register", "resolve_metrics", "resolve_rates", "run", "strided_length", "summary_values", "write_report",
]


def register(subparsers: Any) -> None:
    """Add ``p3d eval`` to ``subparsers`` (:data:`p3d.cli.COMMAND_MODULES`), described by this docstring."""
    from p3d.cli import help_text

    _cli.register(subparsers, description=help_text(__doc__))
