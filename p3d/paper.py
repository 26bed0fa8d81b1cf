"""Every number that arXiv 2503.20308 (CVPR 2025, "Perceptually Accurate 3D Talking Head Generation") reports,
in one module. Nothing here is measured by p3d: these are the paper's own values on the real datasets, used
only for labelled reference columns (:mod:`p3d.experiments`, :mod:`p3d.analysis.training_cost`) and for the
paper's evidence in :mod:`p3d.claims`. No other module of p3d types these numbers (a test greps for them).

Sources: the paper (main text and supplement, v3) and, for the implementation facts in :data:`HYPER`, the
official repository ``kaist-ami/Perceptual-3D-Talking-Head`` (marked "code" in :data:`HYPER_SOURCES`).

Units, as the paper gives them:

- MTM: milliseconds (VOCASET at 30 fps, 33.3 ms per frame); lower is better.
- LVE: the paper states no unit (FaceFormer's VOCASET convention is x 1e-5 mm); lower is better.
- PLRS: cosine similarity, unitless, in [-1, 1]; higher is better.
- SLCC: Pearson r (unitless); Δ = |SLCC(model) - SLCC(data)|, lower is better.
- FDD (Table S7): x 1e-7 mm; lower is better.
- Table S8: seconds per training iteration and MB of GPU memory on one NVIDIA A6000.
- User studies (Tables 1 right, S4-S6): percent of answers preferring each side; Table S3: Spearman rho.

One section (:data:`FACEFORMER_VOCASET_TRAIN_MSE_START` and neighbours) quotes numbers from outside the paper
that a p3d setting needs (the perceptual-loss weight's reference scale, :mod:`p3d.losses.weight`), each with
its source.

Model keys are p3d's (``faceformer``, ``codetalker``, ``selftalk``); critic / variant keys are
:mod:`p3d.experiments`' (``none``, ``ours``, ``syncnet3d``, ``no2d``; Table 4: ``voca``, ``mead``,
``mead+ours``).
"""
from __future__ import annotations

from dataclasses import dataclass

from p3d.registry import CRITIC_LABELS, MODEL_LABELS, MODELS  # noqa: F401  (the paper's three baselines, one definition)


# -- Tables 2 and 3: VOCASET test set (Config 1) ------------------------------------------------------------
@dataclass(frozen=True)
class LipSyncRow:
    """One row of Table 2 / Table 3: MTM (ms), LVE (unit not stated), PLRS (cosine), SLCC (r) and its Δ to
    the data's SLCC."""

    mtm_ms: float
    lve: float
    plrs: float
    slcc: float
    slcc_delta: float

    def value(self, metric: str) -> float:
        """The value of ``metric``: ``mtm_ms``, ``lve``, ``plrs``, ``slcc`` or ``slcc_delta``."""
        return float(getattr(self, metric))


@dataclass(frozen=True)
class DataRow:
    """A dataset's own row (the ground truth scored as a model): PLRS and SLCC; Tables 2/3 have one SLCC,
    Table 4 one per level (Lv1, Lv2, Lv3, Avg)."""

    plrs: float
    slcc: float | tuple[float, ...]


#: Table 3 (critic ablation, VOCASET test): (model, critic) -> row. Critics: ``none`` (the base model),
#: ``syncnet3d`` (3D SyncNet), ``no2d`` (Ours w/o 2D prior), ``ours`` (Ours w/ 2D prior). The ``none`` and
#: ``ours`` rows are Table 2's.
TABLE3: dict[tuple[str, str], LipSyncRow] = {
    ("faceformer", "none"): LipSyncRow(53.6, 3.357, 0.368, 0.26, 0.08),
    ("faceformer", "syncnet3d"): LipSyncRow(55.6, 3.316, 0.435, 0.38, 0.04),
    ("faceformer", "no2d"): LipSyncRow(55.3, 3.278, 0.400, 0.42, 0.08),
    ("faceformer", "ours"): LipSyncRow(52.2, 3.091, 0.463, 0.37, 0.03),
    ("codetalker", "none"): LipSyncRow(61.8, 3.700, 0.381, 0.38, 0.04),
    ("codetalker", "syncnet3d"): LipSyncRow(59.6, 4.319, 0.379, 0.14, 0.20),
    ("codetalker", "no2d"): LipSyncRow(55.9, 3.579, 0.374, 0.23, 0.11),
    ("codetalker", "ours"): LipSyncRow(60.9, 3.579, 0.388, 0.35, 0.01),
    ("selftalk", "none"): LipSyncRow(50.1, 2.971, 0.414, 0.41, 0.07),
    ("selftalk", "syncnet3d"): LipSyncRow(49.5, 2.941, 0.405, 0.35, 0.01),
    ("selftalk", "no2d"): LipSyncRow(54.4, 3.149, 0.417, 0.39, 0.05),
    ("selftalk", "ours"): LipSyncRow(49.2, 2.924, 0.418, 0.35, 0.01),
}
#: Table 2 (lip synchronization on the VOCASET test set): (model, ``none`` | ``ours``) -> row; the same
#: numbers as Table 3's rows.
TABLE2: dict[tuple[str, str], LipSyncRow] = {k: v for k, v in TABLE3.items() if k[1] in ("none", "ours")}
#: Tables 2/3, first row: VOCASET (GT data) scored as a model.
VOCASET_DATA = DataRow(plrs=0.409, slcc=0.34)


# -- Table 4: MEAD-3D test set (Config 2), level-wise SLCC --------------------------------------------------
#: Table 4's SLCC columns: MEAD intensity levels 1-3 and "Avg" (pooled over the levels).
TABLE4_LEVELS: tuple[str, ...] = ("Lv1", "Lv2", "Lv3", "Avg")


@dataclass(frozen=True)
class LevelRow:
    """One row of Table 4: MTM (ms), LVE, PLRS, and (SLCC, Δ) per level of :data:`TABLE4_LEVELS`."""

    mtm_ms: float
    lve: float
    plrs: float
    levels: tuple[tuple[float, float], ...]

    def slcc_delta(self, level: str = "Avg") -> float:
        """Δ at ``level`` (one of :data:`TABLE4_LEVELS`)."""
        return self.levels[TABLE4_LEVELS.index(level)][1]

    def value(self, metric: str) -> float:
        """``mtm_ms``, ``lve``, ``plrs`` or ``slcc_delta`` (the Avg column)."""
        return self.slcc_delta() if metric == "slcc_delta" else float(getattr(self, metric))


#: Table 4: (model, variant) -> row. Variants: ``voca`` (trained on VOCASET only), ``mead`` (+ MEAD-3D),
#: ``mead+ours`` (+ MEAD-3D + the perceptual loss).
TABLE4: dict[tuple[str, str], LevelRow] = {
    ("faceformer", "voca"): LevelRow(59.6, 3.207, 0.299, ((0.08, 0.16), (0.07, 0.23), (0.07, 0.32), (0.06, 0.36))),
    ("faceformer", "mead"): LevelRow(59.5, 1.139, 0.176, ((0.26, 0.02), (0.30, 0.00), (0.34, 0.05), (0.35, 0.07))),
    ("faceformer", "mead+ours"): LevelRow(55.8, 1.114, 0.306,
                                          ((0.27, 0.03), (0.27, 0.03), (0.32, 0.07), (0.33, 0.09))),
    ("codetalker", "voca"): LevelRow(60.7, 3.236, 0.294, ((0.02, 0.22), (0.03, 0.27), (0.03, 0.36), (0.02, 0.40))),
    ("codetalker", "mead"): LevelRow(60.9, 2.954, 0.154, ((0.09, 0.15), (0.12, 0.18), (0.06, 0.33), (0.11, 0.31))),
    ("codetalker", "mead+ours"): LevelRow(58.6, 2.705, 0.221,
                                          ((0.18, 0.06), (0.29, 0.01), (0.31, 0.08), (0.31, 0.11))),
    ("selftalk", "voca"): LevelRow(53.4, 3.396, 0.294, ((0.14, 0.10), (0.14, 0.16), (0.17, 0.22), (0.15, 0.27))),
    ("selftalk", "mead"): LevelRow(54.2, 1.238, 0.216, ((0.16, 0.08), (0.28, 0.02), (0.32, 0.07), (0.31, 0.11))),
    ("selftalk", "mead+ours"): LevelRow(52.7, 1.192, 0.230,
                                        ((0.17, 0.07), (0.29, 0.01), (0.34, 0.05), (0.33, 0.09))),
}
#: Table 4, first row: MEAD-3D (data): PLRS and SLCC at Lv1, Lv2, Lv3, Avg.
MEAD_DATA = DataRow(plrs=0.230, slcc=(0.24, 0.30, 0.39, 0.42))


# -- user studies: Table 1, Tables S3-S6 (Sec. D, E.2, G.1; no tests or intervals reported) -----------------
@dataclass(frozen=True)
class Preference:
    """An A/B study: ``participants`` and, per row (a model or ``Overall``), the percent of answers preferring
    (A, B), B being the paper's proposal."""

    participants: int
    rows: dict[str, tuple[float, float]]


#: Table 1 left: participants of the 3x3 speech-vs-lip-intensity ranking (the cell values are an image in the
#: paper and not available).
TABLE1_LEFT_PARTICIPANTS = 17
#: Table 1 right: A = temporally synchronized without expressive sync, B = expressive sync with the speech
#: leading the lips by :data:`TABLE1_RIGHT_ASYNCHRONY_MS`.
TABLE1_RIGHT = Preference(28, {"-": (17.4, 82.6)})
TABLE1_RIGHT_ASYNCHRONY_MS = 100.0


@dataclass(frozen=True)
class HumanRankAgreement:
    """Table S3: Spearman rho of each metric's model ranking with the human ranking."""

    participants: int
    rho: dict[str, float]


#: Table S3 (16 participants): Spearman rho with the human ranking, per metric (``lve``, ``plrs``).
TABLE_S3 = HumanRankAgreement(16, {"lve": 0.166, "plrs": 0.437})
#: Table S4 (Config 1, lip synchronization, A/B): (w/o, w/ the perceptual loss) percent.
TABLE_S4 = Preference(18, {"FaceFormer": (13.7, 86.3), "CodeTalker": (32.4, 67.6), "SelfTalk": (35.3, 64.7),
                           "Overall": (27.1, 72.9)})
#: Table S5 (Config 1, overall quality of facial movements, A/B): (w/o, w/ the perceptual loss) percent.
TABLE_S5 = Preference(15, {"FaceFormer": (14.4, 85.6), "CodeTalker": (27.8, 72.2), "SelfTalk": (37.8, 62.2),
                           "Overall": (26.7, 73.3)})
#: Table S6 (Config 2, lip synchronization, 14 participants): comparison -> (left, right) percent per model.
#: CodeTalker (c) reads 19.0 / 91.0 in the paper (sums to 110 %: a typo there), copied as printed.
TABLE_S6_PARTICIPANTS = 14
TABLE_S6: dict[str, Preference] = {
    "(a) original vs + MEAD-3D": Preference(14, {"FaceFormer": (33.3, 66.7), "CodeTalker": (17.9, 82.1),
                                                 "SelfTalk": (17.9, 82.1), "Overall": (23.1, 76.9)}),
    "(b) + MEAD-3D vs + MEAD-3D + loss": Preference(14, {"FaceFormer": (32.1, 67.9), "CodeTalker": (34.6, 65.4),
                                                         "SelfTalk": (29.5, 70.5), "Overall": (32.1, 67.9)}),
    "(c) original vs + MEAD-3D + loss": Preference(14, {"FaceFormer": (19.2, 80.8), "CodeTalker": (19.0, 91.0),
                                                        "SelfTalk": (17.9, 82.1), "Overall": (15.4, 84.6)}),
}


# -- Table S2: datasets; Table S7: FDD; Table S8: training cost ---------------------------------------------
@dataclass(frozen=True)
class DatasetStats:
    """Table S2: number of vertex clips, speaker IDs, total hours, frames per second."""

    clips: int
    speakers: int
    hours: float
    fps: int


TABLE_S2: dict[str, DatasetStats] = {
    "VOCASET": DatasetStats(475, 12, 0.5, 30),
    "BIWI": DatasetStats(1109, 14, 1.4, 25),
    "LRS3-3D": DatasetStats(17752, 788, 61.1, 25),
    "MEAD-3D": DatasetStats(8765, 15, 10.2, 30),
}
#: Test split sizes (Sec. C.3), clips.
TEST_SPLIT_CLIPS: dict[str, int] = {"LRS3-3D": 934, "MEAD-3D": 3470}

#: Table S7: (model, ``none`` | ``ours``) -> FDD (x 1e-7 mm, lower is better).
TABLE_S7: dict[tuple[str, str], float] = {
    ("faceformer", "none"): 3.789, ("faceformer", "ours"): 3.325,
    ("codetalker", "none"): 3.414, ("codetalker", "ours"): 3.259,
    ("selftalk", "none"): 3.319, ("selftalk", "ours"): 3.424,
}
FDD_UNIT = "x 1e-7 mm"


@dataclass(frozen=True)
class IterationCost:
    """A Table S8 row: seconds per training iteration and memory (MB) on one NVIDIA A6000."""

    time_s: float
    memory_mb: float


#: Table S8 (training efficiency per iteration, one NVIDIA A6000): model -> ``base`` | ``ours`` -> cost.
TABLE_S8: dict[str, dict[str, IterationCost]] = {
    "faceformer": {"base": IterationCost(0.447, 1461.0), "ours": IterationCost(0.537, 1738.0)},
    "codetalker": {"base": IterationCost(0.138, 3393.0), "ours": IterationCost(0.289, 3675.0)},
    "selftalk": {"base": IterationCost(0.175, 8204.0), "ours": IterationCost(0.320, 8480.0)},
}
TABLE_S8_DEVICE = "1x NVIDIA A6000"


def table_s8_overhead(model: str) -> tuple[float, float, float]:
    """Table S8's cost of the loss for ``model``: (added seconds per iteration, time ratio, added MB)."""
    base, ours = TABLE_S8[model]["base"], TABLE_S8[model]["ours"]
    return ours.time_s - base.time_s, ours.time_s / base.time_s, ours.memory_mb - base.memory_mb


# -- numbers quoted in the text and figures -----------------------------------------------------------------
#: Sec. 3 / Table 2 text / Fig. S8: "most base models reach 50-60 ms MTM" (ms, inclusive band).
BASELINE_MTM_BAND_MS: tuple[float, float] = (50.0, 60.0)
#: Sec. 3 (Vatakis & Spence): asynchrony becomes noticeable when the speech leads the lips by more than 50 ms
#: or follows them by more than 220 ms.
ASYNCHRONY_THRESHOLDS_MS: dict[str, float] = {"speech leads": 50.0, "speech lags": 220.0}
#: Fig. S5: offsets injected into VOCASET GT (frames at 30 fps, speech leading): 0 to 10 frames.
FIG_S5_OFFSET_FRAMES: tuple[int, int] = (0, 10)


# -- from outside the paper: FaceFormer's own training loss on VOCASET -----------------------------------------
#: Source of the two values below: FaceFormer issue #12, "Please provide training details" (2022-04-14), a
#: user retraining FaceFormer from scratch on VOCASET with the official ``main.py`` defaults; its author replies
#: "Yes. The training loss is quite small" (no value of her own).
FACEFORMER_VOCASET_TRAIN_MSE_SOURCE = "https://github.com/EvelynFan/FaceFormer/issues/12"
#: FaceFormer's training loss (``nn.MSELoss`` of the vertices, metres^2) at the start of training on VOCASET:
#: ``main.py`` prints the running mean over the epoch's clips so far, and the issue quotes
#: "(Epoch 1, iteration 115) TRAIN LOSS:0.0000014" (7 decimals: 1.35e-6 <= value < 1.45e-6).
FACEFORMER_VOCASET_TRAIN_MSE_START = 1.4e-6
#: The same run's training loss "after half of the epoches" (about epoch 50 of 100), metres^2, 7 decimals.
FACEFORMER_VOCASET_TRAIN_MSE_MIDWAY = 3e-7


# -- hyper-parameters that are facts of the paper or the official code --------------------------------------
@dataclass(frozen=True)
class Hyperparameters:
    """The training and evaluation settings the paper (Sec. C.2, E.1, Table S1) or its official code states.
    :data:`HYPER_SOURCES` names the source of each field."""

    loss_weight: float = 1e-7             # weight of L_percp added to the base model's loss
    temperature: float = 0.07             # InfoNCE tau
    window_frames: int = 5                # T: mesh frames per window (loss, PLRS, stages 1-2)
    loss_window_stride: int = 1           # sliding stride of the loss' windows
    plrs_window_stride: int = 5           # PLRS: non-overlapping windows
    loss_batch_windows: int = 80          # windows per contrastive batch of the loss
    stage1_batch: int = 40
    stage2_batch: int = 80
    evaluator_batch: int = 256            # the PLRS evaluator, both stages
    hidden: int = 512                     # H
    encoder_layers: int = 10              # N_e
    decoder_blocks: int = 3               # N_d
    attention_heads: int = 8
    mask_ratio: float = 0.30              # P, stage 1
    learning_rate: float = 3e-4           # stages 1 and 2, AdamW
    adam_betas: tuple[float, float] = (0.9, 0.95)
    adam_eps: float = 1e-8
    epochs: int = 100                     # stages 1 and 2
    finetune_epochs: int = 5              # the loss' critic on VOCASET train
    finetune_learning_rate: float = 1e-4  # printed "1e4"
    mel_bins: int = 128
    sample_rate_hz: int = 16000
    vocaset_resample_hz: int = 19200      # VOCASET audio for PLRS and the loss
    n_vertices: int = 5023                # FLAME
    mtm_upper_lip_vertex: int = 3531
    mtm_lower_lip_vertex: int = 3504
    mtm_gaussian_sigma: float = 2.0       # frames
    syncnet3d_epochs: int = 20


HYPER = Hyperparameters()
#: Field of :class:`Hyperparameters` -> where it is stated ("paper <section>" or "code <file>").
HYPER_SOURCES: dict[str, str] = {
    "loss_weight": "paper C.2; code perceptual_loss/main.py (guidance_weight)",
    "temperature": "code (logits / 0.07); the paper gives no value",
    "window_frames": "paper C.2, Table S1",
    "loss_window_stride": "paper C.2",
    "plrs_window_stride": "paper E.1",
    "loss_batch_windows": "paper C.2; code guidance_batch_size",
    "stage1_batch": "paper C.2",
    "stage2_batch": "paper C.2",
    "evaluator_batch": "paper E.1",
    "hidden": "paper C.2, Table S1",
    "encoder_layers": "paper Table S1",
    "decoder_blocks": "paper Table S1",
    "attention_heads": "paper Table S1",
    "mask_ratio": "paper C.2",
    "learning_rate": "paper C.2",
    "adam_betas": "paper C.2",
    "adam_eps": "paper C.2",
    "epochs": "paper C.2",
    "finetune_epochs": "paper C.2",
    "finetune_learning_rate": "paper C.2 (printed 1e4)",
    "mel_bins": "code (kaldi fbank)",
    "sample_rate_hz": "code",
    "vocaset_resample_hz": "code evaluate_PLRS.py",
    "n_vertices": "paper Table S1",
    "mtm_upper_lip_vertex": "code evaluate_MTM.py",
    "mtm_lower_lip_vertex": "code evaluate_MTM.py",
    "mtm_gaussian_sigma": "code evaluate_MTM.py",
    "syncnet3d_epochs": "paper Sec. F",
}


# -- helpers ----------------------------------------------------------------------------------------------
#: Metrics of Tables 2-4 and whether lower values are better.
LOWER_IS_BETTER: dict[str, bool] = {"mtm_ms": True, "lve": True, "plrs": False, "slcc_delta": True, "fdd": True}


def effect(metric: str, without: LipSyncRow | LevelRow, with_: LipSyncRow | LevelRow) -> float:
    """The paper's change ``with_ - without`` of ``metric`` (in the table's own units)."""
    return with_.value(metric) - without.value(metric)


#: Table 3's ablation critics, each compared with ``ours`` as the perceptual loss.
TABLE3_ABLATIONS: tuple[str, ...] = ("syncnet3d", "no2d")
#: Table 4's two steps, by the label p3d's tables give them (after ``"<Model>: "``; MEAD-3D's stand-in is
#: ``synth-mead``): the rows of :data:`TABLE4` without and with the step.
TABLE4_STEPS: dict[str, tuple[str, str]] = {"+ synth-mead": ("voca", "mead"), "+ ours": ("mead", "mead+ours")}


def critic_comparison(critic: str) -> str:
    """Table 3's comparison of ablation critic ``critic`` with ours, as p3d's tables label it (after
    ``"<Model>: "``): ``"ours vs 3D SyncNet"``, ``"ours vs Ours w/o 2D prior"``."""
    return f"ours vs {CRITIC_LABELS[critic]}"


def comparison_rows(table: int, model: str) -> dict[str, tuple[LipSyncRow | LevelRow, LipSyncRow | LevelRow]]:
    """The paper's rows (without, with) of ``model`` for each comparison p3d makes of Table 3 (every ablation
    critic against ours, :func:`critic_comparison`) or Table 4 (:data:`TABLE4_STEPS`), keyed by the comparison's
    label; ``effect(metric, *pair)`` is the paper's change. Raises ``ValueError`` for a table other than 3 or 4."""
    if table == 3:
        return {critic_comparison(c): (TABLE3[(model, c)], TABLE3[(model, "ours")]) for c in TABLE3_ABLATIONS}
    if table == 4:
        return {label: (TABLE4[(model, a)], TABLE4[(model, b)]) for label, (a, b) in TABLE4_STEPS.items()}
    raise ValueError(f"table: expected 3 or 4, got {table!r}")
