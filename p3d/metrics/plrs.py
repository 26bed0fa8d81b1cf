"""PLRS, the Perceptual Lip Readability Score (paper Sec. 5, E.1, Eq. (a); higher is better).

    PLRS(S, M) = (1/G) sum_{i=1..G} cos(c_{s,i}, c_{m,i})

for G non-overlapping 5-frame windows of a vertex sequence and their speech windows, with
``c_s`` / ``c_m`` the mean-pooled, L2-normalised embeddings of a speech-mesh representation (the
PLRS *evaluator*, which must be trained independently of any critic used as a training loss).

Semantics of the official ``evaluation/evaluate_PLRS.py``, reproduced exactly:

- speech windows as :func:`p3d.audio.speech_windows` (the official code always resamples to
  19.2 kHz, i.e. assumes 30 fps; here the rate follows ``fps``: 640 * fps, for ``fps`` within
  :data:`p3d.audio.WINDOW_FPS_RANGE`, 25-30, else refused);
- ``n_windows = min(#speech windows, T - 4)``; window ``i`` = frames ``[5 i, 5 i + 5)`` paired
  with speech window ``5 i``, for ``i < n_windows // 5`` (so G = n_windows // 5);
- the per-sequence score is the mean of the diagonal cosine similarities; the dataset PLRS is the
  mean over sequences (the caller's job; the official script then rounds to 3 decimals);
- frame rates must match: VOCASET ground truth is 60 fps and the official script takes every
  second frame (``[::2]``) to reach the 30 fps of predictions. Pass 30 fps vertices (do
  ``vertices[::2]`` yourself) with ``fps=30``.

Beyond the paper, :func:`plrs_calibrated` (PLRS-c) and :func:`plrs_scores` add hubness-corrected
companions computed from the same windows: the positive cosine minus the mean cosine to *other* clips'
speech (chance 0), and the retrieval rank of the true speech window (MRR, R@1). The official PLRS rewards
damped lip motion (a mesh embedding near the centroid is close to any speech); these do not by design.
:func:`plrs_partial` (PLRS-p) weighs the correction; :func:`plrs_enrolled` (PLRS-e) adds to PLRS-c the lip
amplitude judged against the speaker's own other clips, which audio alone cannot know. The official score is
unchanged.

Works with any model exposing ``encode_speech`` / ``encode_mesh`` (the stage-2 model, 3D SyncNet,
"w/o 2D prior"). Inputs are validated; bad ones raise :class:`p3d.errors.InputError`.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from p3d.device import eval_mode
from p3d.errors import InputError

WINDOW = 5


def _check_batch_size(batch_size: Any) -> int:
    if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise InputError(f"batch_size: expected a positive number of windows per forward pass, got {batch_size!r}")
    return int(batch_size)


def _embed_windows(fbank_windows: Any, vertices: Any, model: Any, batch_size: int,
                   speech_bank: Any = None) -> tuple[Any, Any]:
    """(speech, mesh) L2-normalised embeddings, torch (G, D) each, of the G non-overlapping PLRS windows
    (the official pairing: frames ``[5 i, 5 i + 5)`` with speech window ``5 i``, G = min(N, T - 4) // 5).
    ``speech_bank``: the clip's own :func:`speech_bank` of :func:`background_windows` (windows 0, 5, 10, ...,
    the same inputs), whose first G rows are then the speech side instead of encoding it again."""
    import torch

    from p3d.losses.perceptual_loss import flat_vertices

    batch_size = _check_batch_size(batch_size)
    fb = np.asarray(fbank_windows, dtype=np.float32)
    if fb.ndim != 3:
        raise InputError(f"fbank_windows: expected (N, T_a, n_mels), got shape {fb.shape}")
    if not np.isfinite(fb).all():
        raise InputError("fbank_windows: speech windows contain NaN or inf")
    verts = flat_vertices(vertices, getattr(model, "n_vertices", None), name="vertices")
    n_windows = min(fb.shape[0], verts.shape[0] - (WINDOW - 1))
    g = max(n_windows, 0) // WINDOW
    if g == 0:
        raise InputError(f"vertices / audio: {verts.shape[0]} frames and {fb.shape[0]} speech windows give no complete "
                         f"non-overlapping 5-frame window (PLRS needs >= 9 frames and 5 speech windows)")
    starts = np.arange(g) * WINDOW
    device = next(model.parameters()).device
    own = None
    if speech_bank is not None:
        own = np.asarray(speech_bank, dtype=np.float32)
        if own.ndim != 2 or own.shape[0] != -(-fb.shape[0] // WINDOW) or not np.isfinite(own).all():
            raise InputError(f"speech_bank: expected the clip's ({-(-fb.shape[0] // WINDOW)}, D) finite speech "
                             f"embeddings of every 5th window, got shape {own.shape}")
    with eval_mode(model), torch.no_grad():
        speech = torch.from_numpy(np.ascontiguousarray(fb[starts])).to(device)
        mesh = torch.stack([verts[s:s + WINDOW] for s in starts]).float().to(device)
        s_out, m_out = [], []
        for a in range(0, g, batch_size):
            if own is None:
                s_out.append(torch.nn.functional.normalize(model.encode_speech(speech[a:a + batch_size]), dim=-1))
            m_out.append(torch.nn.functional.normalize(model.encode_mesh(mesh[a:a + batch_size]), dim=-1))
        speech_out = torch.cat(s_out) if own is None else torch.from_numpy(np.ascontiguousarray(own[:g])).to(device)
        return speech_out, torch.cat(m_out)


def plrs_from_features(fbank_windows: Any, vertices: Any, model: Any, batch_size: int = 256, *,
                       speech_bank: Any = None) -> float:
    """PLRS of one sequence from precomputed speech windows.

    Args:
        fbank_windows: (N, 20, 128) speech windows (:func:`p3d.audio.speech_windows` or
            :class:`p3d.audio.FeatureCache`); window ``j`` starts at mesh frame ``j``.
        vertices: (T, V, 3) or (T, V*3) absolute vertex positions at the frame rate the windows
            were computed for.
        model: a speech-mesh representation (``encode_speech``, ``encode_mesh``).
        batch_size: windows per forward pass (memory only; does not change the result).
        speech_bank: optional, the clip's :func:`speech_bank` of its :func:`background_windows` (computed once,
            e.g. cached across evaluations of the same audio): the speech side is then read from it, not encoded
            again (the same windows; equal to float32 rounding of the batch shape).

    Returns:
        Mean cosine similarity over the G = min(N, T - 4) // 5 non-overlapping windows.
    """
    speech, mesh = _embed_windows(fbank_windows, vertices, model, batch_size, speech_bank)
    return float((speech * mesh).sum(dim=-1).mean())


def plrs(audio: Any, vertices: Any, model: Any, fps: float, sr: int = 16000) -> float:
    """PLRS of one sequence (Eq. (a)).

    Args:
        audio: (n_samples,) mono float samples in [-1, 1] of the clip's speech.
        vertices: (T, V, 3) or (T, V*3) generated (or GT) vertex positions at ``fps``.
        model: the PLRS evaluator (``encode_speech`` / ``encode_mesh``).
        fps: frame rate of ``vertices`` (30 for VOCASET predictions; GT at 60 fps: pass ``[::2]``).
        sr: sample rate of ``audio``.
    """
    from p3d.audio import speech_windows

    return plrs_from_features(speech_windows(audio, sr, fps), vertices, model)


# -- a hubness-corrected lip-readability score beside the official PLRS (beyond the paper) -----------------
#: Cosines closer than this to the positive pair's count as ties in the retrieval score (float32 resolution).
TIE_TOLERANCE = 1e-6


def background_windows(fbank_windows: Any) -> np.ndarray:
    """The speech windows one clip contributes to a background bank: every 5th window (starts 0, 5, 10, ...),
    i.e. the speech side of its non-overlapping PLRS windows. (N, 20, 128) -> (ceil(N / 5), 20, 128)."""
    fb = np.asarray(fbank_windows, dtype=np.float32)
    if fb.ndim != 3:
        raise InputError(f"fbank_windows: expected (N, T_a, n_mels), got shape {fb.shape}")
    return fb[::WINDOW]


def speech_bank(fbank_windows: Any, model: Any, batch_size: int = 256) -> np.ndarray:
    """(K, D) float32 L2-normalised speech embeddings of (K, 20, 128) speech windows: a background bank for
    :func:`plrs_calibrated` / :func:`plrs_scores` (e.g. :func:`background_windows` of *other* clips,
    concatenated). Computing it once and passing the embeddings saves re-encoding it for every sequence."""
    import torch

    batch_size = _check_batch_size(batch_size)
    fb = np.asarray(fbank_windows, dtype=np.float32)
    if fb.ndim != 3 or fb.shape[0] == 0:
        raise InputError(f"background: expected (K >= 1, T_a, n_mels) speech windows, got shape {fb.shape}")
    if not np.isfinite(fb).all():
        raise InputError("background: speech windows contain NaN or inf")
    device = next(model.parameters()).device
    with eval_mode(model), torch.no_grad():
        out = [torch.nn.functional.normalize(model.encode_speech(torch.from_numpy(
            np.ascontiguousarray(fb[a:a + batch_size])).to(device)), dim=-1) for a in range(0, len(fb), batch_size)]
    return torch.cat(out).cpu().numpy().astype(np.float32)


@dataclasses.dataclass(frozen=True)
class PLRSScores:
    """The official PLRS and its hubness-corrected companions for one sequence (see :func:`plrs_scores`)."""

    official: float
    """PLRS as defined (Eq. (a)): mean positive-pair cosine, in [-1, 1]; chance is model-dependent."""
    calibrated: float
    """PLRS-c: mean positive cosine minus the mean cosine to the background speech, in [-2, 2]; chance 0."""
    mrr: float
    """Mean reciprocal rank of the true speech window among the candidates, in (0, 1]; chance ``mrr_chance``."""
    recall_at_1: float
    """Share of windows whose true speech window ranks first, in [0, 1]; chance ``recall_at_1_chance``."""
    mrr_chance: float
    recall_at_1_chance: float
    n_windows: int
    """G, the non-overlapping 5-frame windows scored."""
    n_candidates: int
    """Candidates per window: the G speech windows of the clip plus the K background windows (G + K)."""


def _unit_rows(b: np.ndarray, what: str = "background") -> np.ndarray:
    """(K, D) float32 embeddings checked (finite, none zero) and L2-normalised row by row."""
    if not np.isfinite(b).all():
        raise InputError(f"{what}: embeddings contain NaN or inf")
    norm = np.linalg.norm(b, axis=1, keepdims=True)
    if (norm == 0).any():
        raise InputError(f"{what}: a zero speech embedding (cannot be L2-normalised)")
    return b / norm


def _as_bank(background: Any, model: Any, batch_size: int, dim: int) -> np.ndarray:
    if isinstance(background, ClipBackground):
        if background.dim != dim:
            raise InputError(f"background: embeddings of size {background.dim}, the model's are {dim}")
        return background.unit_rows()
    b = np.asarray(background, dtype=np.float32)
    if b.ndim == 3:
        b = speech_bank(b, model, batch_size)
    if b.ndim != 2 or b.shape[0] == 0:
        raise InputError(f"background: expected (K >= 1, T_a, n_mels) speech windows or (K >= 1, D) speech "
                         f"embeddings, got shape {b.shape}")
    if b.shape[1] != dim:
        raise InputError(f"background: embeddings of size {b.shape[1]}, the model's are {dim}")
    return _unit_rows(b)


class SpeechBackground:
    """Every clip's :func:`speech_banks` embeddings, checked, stacked and L2-normalised once, so that the
    background of each clip (:meth:`excluding`) needs no stacking, checking and normalising of its own.

    :func:`plrs_scores` with ``background=bank.excluding(clip)`` gives the numbers of ``background=
    background_excluding(banks, clip)`` bit for bit: each row is normalised alone, so the rows of the stack
    equal those of any sub-stack, and the clip's background is those rows, in the same order (why not one product
    with the whole stack and the clip's columns dropped: BLAS may sum a product of another shape in another
    order). Built for an evaluation that scores every clip against all the others (:func:`p3d.evaluate.evaluate`).
    """

    def __init__(self, banks: Any) -> None:
        if not hasattr(banks, "items") or not banks:
            raise InputError("banks: expected a non-empty {clip: (K_c, D) speech embeddings} mapping")
        arrays = {str(k): np.asarray(v, dtype=np.float32) for k, v in banks.items()}
        if any(a.ndim != 2 or a.shape[0] == 0 for a in arrays.values()) or len({a.shape[1] for a in arrays.values()}) > 1:
            raise InputError("banks: expected (K_c >= 1, D) speech embeddings of one size D for every clip")
        self._rows: dict[str, tuple[int, int]] = {}
        start = 0
        for k, a in arrays.items():
            self._rows[k] = (start, start + a.shape[0])
            start += a.shape[0]
        self._unit = _unit_rows(np.concatenate(list(arrays.values()))).astype(np.float64)  # as plrs_scores uses them
        self.dim = int(self._unit.shape[1])

    def excluding(self, clip: str) -> ClipBackground:
        """The background of ``clip``: every other clip's rows (as :func:`background_excluding`)."""
        start, stop = self._rows.get(str(clip), (0, 0))
        if stop - start == self._unit.shape[0]:
            raise InputError(f"background: no clip other than {clip!r} to draw background speech from "
                             f"(PLRS-c needs the speech of at least one other clip)")
        return ClipBackground(self._unit, start, stop)


@dataclasses.dataclass(frozen=True)
class ClipBackground:
    """One clip's background in a :class:`SpeechBackground`: the unit rows (float64) outside ``[start, stop)``."""

    unit: np.ndarray
    start: int
    stop: int

    @property
    def dim(self) -> int:
        return int(self.unit.shape[1])

    def unit_rows(self) -> np.ndarray:
        return np.concatenate([self.unit[:self.start], self.unit[self.stop:]])


def _expected_reciprocal_rank(n_greater: np.ndarray, n_tied: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """E[1/rank] and P(rank = 1) of the true item when ``n_greater`` candidates score higher and ``n_tied``
    others tie with it, ties broken uniformly at random: (1/(t+1)) sum_{r=g+1}^{g+t+1} 1/r, and 1/(t+1) if g = 0."""
    top = int((n_greater + n_tied).max()) + 1
    harmonic = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, top + 1))])  # harmonic[n] = H_n
    t1 = n_tied + 1
    err = (harmonic[n_greater + t1] - harmonic[n_greater]) / t1
    r1 = np.where(n_greater == 0, 1.0 / t1, 0.0)
    return err, r1


def plrs_scores(fbank_windows: Any, vertices: Any, model: Any, background: Any, *,
                batch_size: int = 256, speech_bank: Any = None) -> PLRSScores:
    r"""The official PLRS and two hubness-corrected lip-readability scores of one sequence, one forward pass.

    Windows are the official PLRS windows (:func:`plrs_from_features`): for i = 1..G, mesh window m_i
    (frames [5(i-1), 5i)) and its speech window s_i, embedded and L2-normalised; B = {b_1..b_K} are
    background speech embeddings from *other* clips (never this clip's speech), e.g. :func:`speech_bank` of
    :func:`background_windows` of the other test clips. All similarities are cosines (dot products of unit
    vectors, dimensionless).

    - **PLRS** (official, Eq. (a)): (1/G) sum_i cos(m_i, s_i).
    - **PLRS-c** (calibrated, contrastive margin):

      PLRS-c = (1/G) sum_i [ cos(m_i, s_i) - (1/K) sum_k cos(m_i, b_k) ]

      Range [-2, 2]; higher is better; **chance 0**: a mesh embedding that carries no information about
      which speech it goes with (e.g. every mesh mapped to one centroid) is as close to other clips' speech
      as to its own. It removes *hubness*: a mesh embedding near the centre of the speech embeddings
      (damped, average-looking motion) has a high cosine with *any* speech, which raises the official PLRS
      but not the margin.
    - **Retrieval** (rank of the true speech): the candidates of window i are its own s_i, the clip's
      other G - 1 speech windows (same speaker and sentence, other times) and the K background windows,
      N = G + K in all. With g_i candidates more similar to m_i than s_i and t_i tying with it
      (|difference| <= :data:`TIE_TOLERANCE`), ties broken at random in expectation:

      MRR = (1/G) sum_i (1/(t_i+1)) sum_{r=g_i+1}^{g_i+t_i+1} 1/r,   R@1 = (1/G) sum_i [g_i = 0] / (t_i+1)

      Ranges (0, 1] and [0, 1]; higher is better; chance H_N / N (H_N the N-th harmonic number) and 1/N.

    Args:
        fbank_windows, vertices, model, batch_size, speech_bank: as :func:`plrs_from_features`.
        background: (K, 20, 128) speech windows of other clips (encoded here) or (K, D) speech embeddings
            (:func:`speech_bank`; re-normalised here), K >= 1, or :meth:`SpeechBackground.excluding` (the same
            numbers, prepared once for many clips).

    Returns:
        :class:`PLRSScores`; ``official`` equals :func:`plrs_from_features` exactly.
    """
    speech_t, mesh_t = _embed_windows(fbank_windows, vertices, model, batch_size, speech_bank)
    official = float((speech_t * mesh_t).sum(dim=-1).mean())
    speech = speech_t.cpu().numpy().astype(np.float64)
    mesh = mesh_t.cpu().numpy().astype(np.float64)
    bank = np.asarray(_as_bank(background, model, batch_size, speech.shape[1]), dtype=np.float64)
    g = len(mesh)
    own = mesh @ speech.T  # (G, G): row i, column j = cos(m_i, s_j)
    other = mesh @ bank.T  # (G, K)
    positive = np.diag(own).copy()
    calibrated = float(np.mean(positive - other.mean(axis=1)))
    candidates = np.concatenate([own, other], axis=1)  # (G, G + K), the positive at column i of row i
    diff = candidates - positive[:, None]
    not_self = np.ones_like(candidates, dtype=bool)
    not_self[np.arange(g), np.arange(g)] = False
    tied = (np.abs(diff) <= TIE_TOLERANCE) & not_self
    greater = (diff > TIE_TOLERANCE) & not_self
    err, r1 = _expected_reciprocal_rank(greater.sum(axis=1), tied.sum(axis=1))
    n = candidates.shape[1]
    return PLRSScores(official=official, calibrated=calibrated, mrr=float(err.mean()), recall_at_1=float(r1.mean()),
                      mrr_chance=float(np.sum(1.0 / np.arange(1, n + 1)) / n), recall_at_1_chance=1.0 / n,
                      n_windows=g, n_candidates=n)


def plrs_calibrated(fbank_windows: Any, vertices: Any, model: Any, background: Any, *, batch_size: int = 256) -> float:
    r"""PLRS-c, the hubness-corrected PLRS of one sequence (higher is better, range [-2, 2], chance 0):

        PLRS-c = (1/G) sum_i [ cos(m_i, s_i) - (1/K) sum_k cos(m_i, b_k) ]

    the official PLRS's positive-pair cosine minus the mean cosine of the same mesh window to K background
    speech windows of *other* clips. Inputs as :func:`plrs_from_features` plus ``background``: (K, 20, 128)
    speech windows or (K, D) embeddings from :func:`speech_bank`. See :func:`plrs_scores` (which also gives
    the retrieval MRR and R@1 from the same forward pass).
    """
    return plrs_scores(fbank_windows, vertices, model, background, batch_size=batch_size).calibrated


def _weight(x: Any, name: str, upper: float | None) -> float:
    """A score weight: a finite int or float (numpy's too) in [0, ``upper``] (no upper bound when None); a bool,
    text, None or an array is refused (float(True) would be a weight of 1)."""
    bound = "a number >= 0" if upper is None else f"a number in [0, {upper:g}]"
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise InputError(f"{name}: expected {bound}, got {x!r}")
    value = float(x)
    if not np.isfinite(value) or value < 0.0 or (upper is not None and value > upper):
        raise InputError(f"{name}: expected {bound}, got {x!r}")
    return value


def _scores(x: Any, name: str) -> np.ndarray:
    """Per-clip scores (a float or an array of them) as float64; bools, text and ragged lists are refused
    (:func:`p3d.metrics._checks.as_real_array`)."""
    from p3d.metrics._checks import as_real_array

    return as_real_array(x, name).astype(np.float64)


def plrs_partial(official: Any, calibrated: Any, hubness_weight: float) -> Any:
    r"""PLRS with a partial hubness correction, from the official PLRS and PLRS-c of the same sequences:

        PLRS-p(lambda) = (1/G) sum_i [ cos(m_i, s_i) - lambda (1/K) sum_k cos(m_i, b_k) ]
                       = official - lambda (official - calibrated)

    (notation of :func:`plrs_scores`). ``lambda = 0`` is the official PLRS (Eq. (a)), ``lambda = 1`` PLRS-c.
    Why a weight between them: on the synthetic testbed the official PLRS scores lips damped to 75 % level with
    the ground truth (a mesh near the centre of the embedding space is close to any speech), while the full
    margin PLRS-c scores lips exaggerated to 125 % *above* it (the background term falls faster than the positive
    cosine as motion grows). The weight is a property of the evaluator, chosen on held-out *validation* speakers
    with :func:`p3d.analysis.referee_validity.select_hubness_weight` and then checked on the test speakers' battery;
    it is never chosen on the clips it judges. It is the same idea as CSLS (Lample et al. 2018, cross-domain
    similarity local scaling, which halves the hub penalty), with the mean over all background windows in place
    of the k nearest (the k-nearest form still favoured damped lips here).

    Works on floats or arrays (per-clip values); linear, so paired differences of PLRS-p are the same weighted
    combination of those of PLRS and PLRS-c.
    """
    lam = _weight(hubness_weight, "hubness_weight", 1.0)
    off = _scores(official, "official")
    cal = _scores(calibrated, "calibrated")
    if off.shape != cal.shape:
        raise InputError(f"official and calibrated: shapes {off.shape} and {cal.shape} differ")
    out = off - lam * (off - cal)
    return float(out) if out.ndim == 0 else out


#: Largest PLRS-e intensity weight mu (:func:`plrs_enrolled`). PLRS-c is a difference of two cosines, in [-2, 2],
#: and |a / a_s - 1| is 1 for a still mouth or lips at twice the speaker's usual amplitude; at mu = 1 that costs
#: half of PLRS-c's range already, beyond it the score ranks lip amplitude more than lip sync (and a huge mu
#: overflowed to -inf, reported as a null PLRS-e). The candidates the weight is chosen from span [0, 1]
#: (:data:`p3d.analysis.referee_validity.INTENSITY_WEIGHTS`).
MAX_INTENSITY_WEIGHT = 1.0


def plrs_enrolled(calibrated: Any, amplitude: Any, enrolled_amplitude: Any, intensity_weight: float) -> Any:
    r"""PLRS-e, PLRS-c with a speaker-enrolled articulation-intensity term (higher is better):

        PLRS-e(mu) = PLRS-c - mu | a / a_s - 1 |

    with ``a`` the sequence's lip amplitude (:func:`p3d.metrics.lip_amplitude`: mean lip distance from the
    speaker's neutral face) and ``a_s`` the speaker's *enrolled* amplitude, the mean lip amplitude of the same
    speaker's other ground-truth clips (:func:`p3d.metrics.enrolled_lip_amplitude`; never the clip judged).
    Why: how wide a speaker opens the mouth is a trait of the speaker, not of the speech, so an audio-only
    referee cannot know it; on the synthetic testbed PLRS-c prefers lips exaggerated to 125 % for most test
    speakers and the official PLRS damped ones for some, while every speaker's own clips say how wide they
    speak. The paper's lip sync has three parts (Sec. 3: temporal synchronisation, lip readability,
    expressiveness); PLRS-c carries the first two, the enrolled term the speaker's intensity. ``mu`` is
    chosen on validation speakers (:func:`p3d.analysis.referee_validity.select_intensity_weight`) and then
    checked on the test speakers' battery. Beyond the paper; it needs the speaker's other GT clips. ``mu``: a
    finite number in [0, :data:`MAX_INTENSITY_WEIGHT`], else :class:`InputError`.

    Works on floats or arrays (per-clip values, broadcast); NaN where ``a_s`` is not positive.
    """
    mu = _weight(intensity_weight, "intensity_weight", MAX_INTENSITY_WEIGHT)
    cal = _scores(calibrated, "calibrated")
    amp = _scores(amplitude, "amplitude")
    ref = _scores(enrolled_amplitude, "enrolled_amplitude")
    try:
        shape = np.broadcast_shapes(cal.shape, amp.shape, ref.shape)
    except ValueError:
        raise InputError(f"calibrated, amplitude, enrolled_amplitude: shapes {cal.shape}, {amp.shape}, {ref.shape} "
                         "do not broadcast") from None
    if np.any(amp[np.isfinite(amp)] < 0):
        raise InputError("amplitude: lip amplitudes are distances, expected >= 0")
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(ref > 0, cal - mu * np.abs(amp / np.where(ref > 0, ref, 1.0) - 1.0), np.nan)
    out = np.broadcast_to(out, shape)
    return float(out) if out.ndim == 0 else out.copy()


def speech_banks(windows_by_clip: Any, model: Any, batch_size: int = 256) -> dict[str, np.ndarray]:
    """``{clip: (K_c, D) speech embeddings}`` of each clip's :func:`background_windows`, from
    ``{clip: (N, 20, 128) speech windows}``: encode a set of clips once, then take the background of any one
    of them with :func:`background_excluding`."""
    if not hasattr(windows_by_clip, "items") or not windows_by_clip:
        raise InputError("windows_by_clip: expected a non-empty {clip: speech windows} mapping")
    return {str(k): speech_bank(background_windows(v), model, batch_size) for k, v in windows_by_clip.items()}


def background_excluding(banks: Any, clip: str) -> np.ndarray:
    """The background bank of ``clip``: the :func:`speech_banks` embeddings of every *other* clip, stacked
    (K, D). Never contains the clip's own speech."""
    others = [b for k, b in banks.items() if k != str(clip)]
    if not others:
        raise InputError(f"background: no clip other than {clip!r} to draw background speech from "
                         f"(PLRS-c needs the speech of at least one other clip)")
    return np.concatenate(others)
