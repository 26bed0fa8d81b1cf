"""Training cost of the perceptual loss (paper Table S8): seconds per training iteration and peak memory.

:func:`iteration_cost` trains a talking-head baseline (:mod:`p3d.train.talker`) for a few iterations in
three **settings** and measures each:

- ``none``: the baseline alone (its own loss);
- ``cache``: plus the perceptual loss (Eq. 6), with the frozen critic's speech embeddings computed once
  per clip when the data are loaded (:class:`p3d.talker_data.TalkerClips`): one mesh-encoder pass per
  step;
- ``nocache``: plus the perceptual loss, the critic embedding the clip's fbank windows at every step
  (what the official ``perceptual_loss/main.py`` does: it precomputes the fbank windows, not the
  embeddings).

**An iteration** is exactly the trainer's (:func:`p3d.train.trainer.train`): collate one clip, forward,
loss, ``zero_grad``, backward, gradient clipping (the recipe's), AdamW step; the clips are the trainer's
own sequence (``batch_indices(n, 1, seed, step)``), identical in every setting, and the model is
initialised from the same seed. ``warmup`` iterations run first (allocator, lazy initialisation,
optimiser state) and are not timed; then ``steps`` iterations are timed one by one with ``time.perf_counter`` (on CUDA after
``torch.cuda.synchronize()``). Data loading and the speech-embedding cache are built before the timed
loop (their one-off cost is reported separately as ``setup_s``). For CodeTalker the timed stage is the
last one (the speech-to-code stage, where the loss is applied), from an untrained VQ-VAE: the cost of an
iteration does not depend on the weights.

**Peak memory** (``peak_mb``, ``step_mb``: MiB, 2**20 bytes, whatever the keys' names say), per setting,
each setting in a **fresh subprocess** (``isolate=True``, the default) so that one setting's allocations
cannot inflate another's. The window is every training iteration, the warm-up included (the first one
allocates the optimiser state), after the job is built (model, data, critic, speech cache):

- CUDA: ``torch.cuda.reset_peak_memory_stats()`` once the job is built, then
  ``torch.cuda.max_memory_allocated()`` (``peak_mb``: tensors allocated by torch: weights, optimiser
  state, data and cache on the device, activations; not the CUDA context or the caching allocator's
  reserve, so below what ``nvidia-smi`` shows); ``step_mb`` = peak minus the memory allocated before the
  first iteration.
- CPU: the process' resident set. Once the job is built, freed heap pages are handed back to the system
  (glibc ``malloc_trim(0)``: computing the speech cache leaves hundreds of MiB of freed-but-retained
  arena pages that are not live memory), the kernel's high-water mark is reset (``/proc/self/clear_refs``
  = 5, Linux) and ``VmHWM`` read after the last iteration (``peak_mb``: the whole process, the Python
  interpreter and torch's libraries included, ~0.3-0.5 GB); ``step_mb`` = peak minus the resident set
  before the first iteration, i.e. what training iterations add (optimiser state, activations, autograd
  graph, critic temporaries). Without ``clear_refs`` (not Linux) it falls back to
  ``resource.getrusage(RUSAGE_SELF).ru_maxrss``, the whole run's peak, data loading included; the
  ``mem_method`` column says which was used. Resident-set figures are noisy (+-10 MiB between runs);
  ``tracemalloc`` does not see torch's allocations and is not used.

:func:`table_s8` lays the measurements out as Table S8, with the paper's numbers (one A6000, the
``paper``-size models on VOCASET) in separate, labelled columns: they are the paper's, never ours (its memory
in MB as printed; ours in MiB, 4.9 % larger than MB).
:func:`models_cost` measures the models of Table S8 in turn (notebook 06).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from p3d import paper as paper_numbers
from p3d.errors import InputError, whole_number
from p3d.registry import MODEL_LABELS

log = logging.getLogger(__name__)

#: Table S8's columns of our memory (:func:`table_s8`): MiB (2**20 bytes). Tables written before they were
#: labelled so call them ``peak mem (MB)`` / ``iter mem (MB)``; the values there are MiB too.
PEAK_MEM = "peak mem (MiB)"
ITER_MEM = "iter mem (MiB)"
OLD_MEM_NAMES: dict[str, str] = {"peak mem (MB)": PEAK_MEM, "iter mem (MB)": ITER_MEM}

#: The measured settings, in table order.
SETTINGS: tuple[str, ...] = ("none", "cache", "nocache")
SETTING_LABELS: dict[str, str] = {
    "none": "without the loss",
    "cache": "with the loss (cached speech embeddings)",
    "nocache": "with the loss (speech embedded every step)",
}

#: Paper Table S8 (training efficiency per iteration, single NVIDIA A6000, from :mod:`p3d.paper`):
#: model -> row -> (time s, memory MB). The paper's numbers, quoted for comparison only.
PAPER_TABLE_S8: dict[str, dict[str, tuple[float, float]]] = {
    model: {row: (c.time_s, c.memory_mb) for row, c in rows.items()} for model, rows in paper_numbers.TABLE_S8.items()}
PAPER_DEVICE = f"{paper_numbers.TABLE_S8_DEVICE} (paper)"


@dataclasses.dataclass(frozen=True)
class CostRequest:
    """One measurement (one setting of one model); JSON-serialisable for the child process."""

    model_name: str
    preset: str
    train_dirs: tuple[str, ...]
    setting: str
    critic: str = "ours"
    critic_ckpt: str | None = None
    loss_weight: float | None = None
    steps: int = 20
    warmup: int = 3
    seed: int = 0
    threads: int | None = None
    device: str = "cpu"
    speech_cache_dir: str | None = None
    wav2vec2: str | None = None
    recogniser: str | None = None


def iteration_cost(
    model_name: str,
    preset: str,
    train_dirs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    critic_ckpt: str | os.PathLike[str] | None = None,
    cache: bool = True,
    steps: int = 20,
    warmup: int = 3,
    seed: int = 0,
    *,
    critic: str = "ours",
    settings: Sequence[str] | None = None,
    loss_weight: float | None = None,
    threads: int | None = None,
    device: str = "cpu",
    isolate: bool = True,
    speech_cache_dir: str | os.PathLike[str] | None = None,
    wav2vec2: str | os.PathLike[str] | None = None,
    recogniser: str | os.PathLike[str] | None = None,
    rounds: int = 1,
) -> dict[str, list[Any]]:
    """Seconds per training iteration and peak memory of ``model_name`` without / with the perceptual loss.

    Args:
        model_name: ``faceformer``, ``codetalker`` or ``selftalk``.
        preset: the model preset (``smoke``, ``cpu``, ``paper``; ``full`` measures its ``cpu`` models).
        train_dirs: training corpus folder(s) (their ``train`` split).
        critic_ckpt: the critic's ``final.pt`` (``p3d train stage2`` ...); without it only ``none`` is measured.
        cache: also measure the ``cache`` setting (the ``nocache`` one is always measured with a critic).
        steps, warmup: timed and untimed iterations per setting.
        seed: model initialisation and clip order (the same in every setting).
        critic: which critic the checkpoint holds (``ours``, ``no2d``, ``syncnet3d``).
        settings: explicit subset of :data:`SETTINGS` (overrides ``cache`` / ``critic_ckpt`` defaults).
        loss_weight: W of the loss (does not change the cost; default the official 1e-7).
        threads: torch intra-op threads (``torch.set_num_threads``; default: torch's).
        device: ``cpu``, ``cuda`` or ``auto``.
        isolate: measure each setting in a fresh Python subprocess (clean peak memory; default), or in
            this process (faster to start; memory then reflects earlier settings too).
        speech_cache_dir: the ``cache`` setting reads (and fills) the on-disk speech-embedding cache there
            (:class:`p3d.train.talker.SpeechEmbeddingCache`, the one training runs use) instead of embedding
            every clip's speech before the first iteration; set-up only, the timed iterations are the same.
        wav2vec2: the local wav2vec2 folder of a ``paper``-preset model (``p3d train <model> --wav2vec2``); the
            step's cost depends on its architecture, not its weights.
        recogniser: SelfTalk's local ``Wav2Vec2ForCTC`` folder at ``paper`` (``p3d train selftalk --recogniser``).
        rounds: measure every setting this many times, the order reversed every other round (none, cache,
            nocache, then nocache, cache, none, ...), so that a drift of the machine's speed falls on every
            setting alike. Each round's ``ratio`` is its time over the same round's ``none`` time; with two or
            more rounds the interval ``ratio_low`` / ``ratio_high`` is the 95 % Student-t interval of the
            rounds' log ratios (the timing noise between processes, which one round cannot show).

    Returns:
        Columns of a tidy table (``pandas.DataFrame(result)``), one row per setting: ``model``, ``preset``,
        ``setting``, ``setting_label``, ``loss`` (critic name or ``none``), ``speech_cache``, ``time_s``
        (mean s/iteration), ``time_s_median``, ``time_s_std``, ``time_s_min``, ``ratio`` (``time_s`` / the
        ``none`` row's), ``peak_mb``, ``step_mb`` (MiB), ``mem_method``, ``steps``, ``warmup``, ``mean_frames``
        (frames of the timed clips), ``n_vertices``, ``clips``, ``setup_s``, ``device``, ``threads``, ``torch``,
        ``rounds``, ``ratio_low``, ``ratio_high`` (NaN with one round). With several rounds ``time_s`` is the mean
        of the rounds' means, ``time_s_std`` the standard deviation between rounds, ``ratio`` the geometric mean
        of the rounds' ratios, ``peak_mb`` / ``step_mb`` the largest.
    """
    steps, warmup, rounds = _whole(steps, "steps", 1), _whole(warmup, "warmup", 0), _whole(rounds, "rounds", 1)
    threads = None if threads is None else _whole(threads, "threads", 1)
    seed = _whole(seed, "seed", 0)
    from p3d.registry import model_preset

    preset = model_preset(preset)  # a preset that trains another's models (full -> cpu) measures those
    dirs = [train_dirs] if isinstance(train_dirs, (str, os.PathLike)) else list(train_dirs)
    if not dirs:
        raise InputError("train_dirs: no corpus folder given")
    for d in dirs:
        if not Path(d).is_dir():
            raise InputError(f"train_dirs: corpus folder {d} not found")
    if critic_ckpt is not None and not Path(critic_ckpt).is_file():
        raise InputError(f"critic_ckpt: {critic_ckpt} not found")
    if settings is None:
        settings = ["none"] + ([] if critic_ckpt is None else (["cache"] if cache else []) + ["nocache"])
    settings = list(settings)
    for s in settings:
        if s not in SETTINGS:
            raise InputError(f"settings: unknown setting {s!r} (choose from {', '.join(SETTINGS)})")
        if s != "none" and critic_ckpt is None:
            raise InputError(f"settings: {s!r} needs critic_ckpt (the perceptual loss' critic)")
    by_round: list[dict[str, dict[str, Any]]] = []
    for k in range(rounds):
        measured: dict[str, dict[str, Any]] = {}
        for s in (settings if k % 2 == 0 else settings[::-1]):
            req = CostRequest(model_name, preset, tuple(str(Path(d).resolve()) for d in dirs), s, critic,
                              None if critic_ckpt is None else str(Path(critic_ckpt).resolve()), loss_weight,
                              int(steps), int(warmup), int(seed), threads, device,
                              None if speech_cache_dir is None else str(Path(speech_cache_dir).resolve()),
                              None if wav2vec2 is None else str(Path(wav2vec2).resolve()),
                              None if recogniser is None else str(Path(recogniser).resolve()))
            log.info("iteration cost: %s/%s, %s (round %d of %d)", model_name, preset, SETTING_LABELS[s], k + 1,
                     rounds)
            measured[s] = _run_isolated(req) if isolate else measure(req)
        by_round.append(measured)
    rows = [_combine_rounds([r[s] for r in by_round], [r.get("none") for r in by_round]) for s in settings]
    return {k: [r[k] for r in rows] for k in rows[0]}


def models_cost(models: Sequence[str], preset: str,
                train_dirs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
                critic_ckpt: str | os.PathLike[str] | None, results: Sequence[Mapping[str, Any]], *, seed: int = 0,
                **options: Any) -> list[dict[str, list[Any]]]:
    """Table S8's measurements (notebook 06): :func:`iteration_cost` of each of ``models`` in turn, each with the loss
    weight W of its run with critic ``ours`` and training seed ``seed`` in ``results`` (the talker runs of
    :func:`p3d.experiments.run_grid`; W does not change the cost). ``seed`` is also :func:`iteration_cost`'s seed;
    ``options`` go to it (``steps``, ``warmup``, ``rounds``, ``threads``, ``speech_cache_dir``, ...). Returns the
    results in the order of ``models``, :func:`table_s8`'s ``rows``."""
    from p3d.experiments.tables import find

    rows = []
    for m in models:
        run = find(results, model=m, critic="ours", seed=seed)
        if run is None:
            raise InputError(f"results: no {m} run with critic ours and seed {seed} (Table S8 takes its loss weight)")
        rows.append(iteration_cost(m, preset, train_dirs, critic_ckpt, seed=seed, loss_weight=run["loss_weight"],
                                   **options))
    return rows


def _whole(value: Any, name: str, low: int) -> int:
    """``value`` as an int >= ``low`` (a whole float such as 20.0 too); InputError otherwise: 2.5 steps ran 2, True
    ran 1, '3' or 2.5 rounds were Python's TypeError after the checks, and a negative seed went on to the trainer."""
    count = whole_number(value, low)
    if count is None:
        raise InputError(f"{name}: expected an integer >= {low}, got {value!r}")
    return count


def _combine_rounds(measured: list[dict[str, Any]], bases: list[dict[str, Any] | None]) -> dict[str, Any]:
    """One setting's row from its rounds (:func:`iteration_cost`): round ratios against the same round's
    ``none`` row, their geometric mean and 95 % t-interval (NaN with one round or no ``none`` row)."""
    import numpy as np
    from scipy import stats

    row = dict(measured[0])
    times = np.array([m["time_s"] for m in measured])
    ratios = np.array([m["time_s"] / b["time_s"] if b else np.nan for m, b in zip(measured, bases)])
    n = len(measured)
    row.update(time_s=float(times.mean()), rounds=n, ratio_low=float("nan"), ratio_high=float("nan"))
    if n > 1:
        row.update(time_s_median=float(np.median([m["time_s_median"] for m in measured])),
                   time_s_std=float(times.std(ddof=1)), time_s_min=float(min(m["time_s_min"] for m in measured)),
                   peak_mb=float(max(m["peak_mb"] for m in measured)),
                   step_mb=float(max(m["step_mb"] for m in measured)),
                   setup_s=float(np.mean([m["setup_s"] for m in measured])))
    logs = np.log(ratios)
    row["ratio"] = float(np.exp(logs.mean())) if np.isfinite(logs).all() else float("nan")
    if n > 1 and np.isfinite(logs).all():
        sd = logs.std(ddof=1)
        half = float(stats.t.ppf(0.975, n - 1) * sd / np.sqrt(n)) if sd > 0 else 0.0
        row.update(ratio_low=float(np.exp(logs.mean() - half)), ratio_high=float(np.exp(logs.mean() + half)))
    return row


def measure(req: CostRequest) -> dict[str, Any]:
    """Run one setting in this process; one row of :func:`iteration_cost`'s table."""
    import numpy as np
    import torch

    from p3d.train.talker import build
    from p3d.train.trainer import _lr_at, batch_indices

    if req.setting not in SETTINGS:
        raise InputError(f"setting: unknown setting {req.setting!r}")
    if req.threads is not None:
        torch.set_num_threads(req.threads)
    t0 = time.perf_counter()
    with_loss = req.setting != "none"
    job = build(req.model_name, req.preset, list(req.train_dirs), critic=req.critic if with_loss else "none",
                critic_checkpoint=req.critic_ckpt if with_loss else None, loss_weight=req.loss_weight,
                cache=req.setting != "nocache", seed=req.seed, device=req.device,
                speech_cache_dir=req.speech_cache_dir if req.setting == "cache" else None, wav2vec2=req.wav2vec2,
                recogniser=req.recogniser)
    model, data, cfg, params = job.model, job.data, job.cfg, job.params
    dev = next(model.parameters()).device
    cuda = dev.type == "cuda"
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps,
                                  weight_decay=cfg.weight_decay)
    setup_s = time.perf_counter() - t0

    def iteration(step: int) -> int:
        torch.manual_seed(req.seed * 1_000_003 + step)
        batch = data.collate(batch_indices(len(data), 1, req.seed, step))
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(cfg, step)
        model.train()
        loss, _ = job.step_fn(model, batch, None)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        optimizer.step()
        return batch.n_frames

    if cuda:
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        before = torch.cuda.memory_allocated(dev)
        method = "torch.cuda.max_memory_allocated over the iterations"
    else:
        before, method = _reset_rss_peak()
    for step in range(req.warmup):
        iteration(step)
    if cuda:
        torch.cuda.synchronize(dev)
    times, frames = [], []
    for step in range(req.warmup, req.warmup + req.steps):
        start = time.perf_counter()
        frames.append(iteration(step))
        if cuda:
            torch.cuda.synchronize(dev)
        times.append(time.perf_counter() - start)
    if cuda:
        peak = torch.cuda.max_memory_allocated(dev)
    else:
        peak = _rss_peak()
    t = np.asarray(times)
    mb = 1024.0 ** 2  # MiB
    return {
        "model": req.model_name, "preset": req.preset, "setting": req.setting,
        "setting_label": SETTING_LABELS[req.setting], "loss": req.critic if with_loss else "none",
        "speech_cache": None if not with_loss else req.setting == "cache",
        "time_s": float(t.mean()), "time_s_median": float(np.median(t)), "time_s_std": float(t.std(ddof=1))
        if len(t) > 1 else 0.0, "time_s_min": float(t.min()), "ratio": float("nan"),
        "peak_mb": peak / mb, "step_mb": max(0.0, (peak - before) / mb) if before is not None else float("nan"),
        "mem_method": method, "steps": req.steps, "warmup": req.warmup, "mean_frames": float(np.mean(frames)),
        "n_vertices": int(data.n_vertices), "clips": len(data), "setup_s": setup_s, "device": _device_name(dev),
        "threads": torch.get_num_threads(), "torch": torch.__version__,
    }


def table_s8(rows: Any) -> Any:
    """Table S8: our seconds per iteration and peak memory per model and setting, beside the paper's.

    Args:
        rows: :func:`iteration_cost` results: one dict of columns, a DataFrame, or a list of either.

    Returns:
        A DataFrame, one row per (model, setting): ``Method`` (``FaceFormer``, ``+ Ours rep. (cached)``,
        ``+ Ours rep. (no cache)``), our columns ``time (s/iter)``, ``x without loss`` (with several rounds: the
        geometric mean of the rounds' ratios, and ``x without loss: 95 % CI over rounds``), ``peak mem (MiB)``,
        ``iter mem (MiB)`` and ``device``, and the paper's columns, prefixed ``paper A6000:``, on the rows
        they correspond to: the paper's base row on ``without the loss``, its ``+ Ours rep.`` row on
        ``no cache`` (the released code embeds the speech windows at every step; the paper does not say
        otherwise). Our memory is the CPU resident set or CUDA allocated memory (``mem_method``), in MiB; the
        paper's is GPU memory, in MB as the paper prints it: compare ratios and differences, not absolute values.
        A model's settings must come from one measurement each under the same device, preset, threads and
        steps (else :class:`InputError`: the ratios would divide one run's time by another's).
    """
    import pandas as pd

    parts = rows if isinstance(rows, list) else [rows]
    df = pd.concat([p if isinstance(p, pd.DataFrame) else pd.DataFrame(p) for p in parts], ignore_index=True)
    missing = {"model", "setting", "time_s", "peak_mb", "step_mb", "device"} - set(df.columns)
    if missing:
        raise InputError(f"table_s8: rows lack the columns {sorted(missing)} (pass iteration_cost results)")
    out = []
    for model in dict.fromkeys(df["model"]):
        sub = df[df["model"] == model]
        twice = sub.loc[sub["setting"].duplicated(), "setting"].tolist()
        if twice:
            raise InputError(f"table_s8: {model} has {twice[0]!r} measured more than once (one measurement per model "
                             "and setting: two runs' rows, or rounds not yet combined)")
        mixed = [c for c in ("device", "preset", "threads", "steps") if c in sub and sub[c].nunique(dropna=False) > 1]
        if mixed:
            raise InputError(f"table_s8: {model}'s settings were measured under different {', '.join(mixed)} "
                             f"({', '.join(f'{c}={sorted(map(str, set(sub[c])))}' for c in mixed)}): the ratios "
                             "to the run without the loss would mix them")
        base = sub.loc[sub["setting"] == "none", "time_s"]
        base_t = float(base.iloc[0]) if len(base) else float("nan")
        paper = PAPER_TABLE_S8.get(model)
        for setting in SETTINGS:
            hit = sub[sub["setting"] == setting]
            if hit.empty:
                continue
            r = hit.iloc[0]
            name = MODEL_LABELS.get(model, model)
            method = {"none": name, "cache": "+ Ours rep. (cached)", "nocache": "+ Ours rep. (no cache)"}[setting]
            paper_key = {"none": "base", "nocache": "ours"}.get(setting)
            p = paper.get(paper_key) if paper and paper_key else None
            rounds = int(r["rounds"]) if "rounds" in r and pd.notna(r["rounds"]) else 1
            ratio = float(r["ratio"]) if rounds > 1 else float(r["time_s"]) / base_t
            ci = (f"[{float(r['ratio_low']):.2f}, {float(r['ratio_high']):.2f}]"
                  if rounds > 1 and setting != "none" and pd.notna(r.get("ratio_low")) else "–")
            out.append({
                "model": model, "Method": method, "setting": setting,
                "time (s/iter)": float(r["time_s"]), "x without loss": ratio,
                **({"x without loss: 95 % CI over rounds": ci} if "rounds" in sub and (sub["rounds"] > 1).any() else {}),
                PEAK_MEM: float(r["peak_mb"]), ITER_MEM: float(r["step_mb"]),
                "device": r["device"] + (f", {int(r['threads'])} thread(s)" if "threads" in r and
                                         str(r["device"]).startswith("cpu") else ""),
                "paper A6000: time (s/iter)": p[0] if p else float("nan"),
                "paper A6000: x without loss": p[0] / paper["base"][0] if p else float("nan"),
                "paper A6000: mem (MB)": p[1] if p else float("nan"),
            })
    table = pd.DataFrame(out)
    table.attrs["note"] = ("ours: measured with p3d.analysis.training_cost; paper A6000 columns: the paper's "
                           "Table S8 (one NVIDIA A6000, paper-size models on VOCASET), quoted, not measured here")
    return table


#: Table S8's measurement per preset (notebook 06): (timed iterations, untimed warm-up iterations, rounds of every
#: setting); a preset not listed takes :data:`COST_DEFAULT`. Few at ``smoke`` (a check that it runs), more rounds
#: where the numbers are reported (the ratio's CI is a t-interval over rounds).
COST_SETTINGS: dict[str, tuple[int, int, int]] = {"smoke": (2, 1, 1), "cpu": (20, 3, 3)}
COST_DEFAULT: tuple[int, int, int] = (20, 3, 5)


def cost_settings(preset: str, steps: int | None = None, warmup: int | None = None, rounds: int | None = None
                  ) -> tuple[int, int, int]:
    """``(steps, warmup, rounds)`` of :func:`iteration_cost` for Table S8 at ``preset``: each given value, else the
    preset's (:data:`COST_SETTINGS`, :data:`COST_DEFAULT`); ``steps`` and ``rounds`` of 0 also take the preset's
    (0 warm-up iterations is a valid choice)."""
    d_steps, d_warmup, d_rounds = COST_SETTINGS.get(preset, COST_DEFAULT)
    return steps or d_steps, d_warmup if warmup is None else warmup, rounds or d_rounds


def table_s8_display(table: Any) -> Any:
    """:func:`table_s8` as notebook 06 writes it: without the ``model`` and ``setting`` keys (``Method`` names the
    row), times to 3 decimals (s), ratios to 2, memory to whole MiB (ours) and MB (the paper's)."""
    return table.drop(columns=["model", "setting"]).round(
        {c: 3 for c in table.columns if "time" in c} | {c: 2 for c in table.columns if "x without" in c}
        | {c: 0 for c in table.columns if "MB)" in c or "MiB)" in c})


def table_s8_note(table: Any, rows: Any, *, steps: int, warmup: int, rounds: int, threads: int, n_vertices: int,
                  critic: str) -> str:
    """The note under Table S8 (notebook 06): :func:`table_s8`'s own note (``table.attrs``), then how it was measured,
    from ``rows`` (the :func:`iteration_cost` results behind ``table``: the clips' mean length, the memory method,
    each setting's set-up seconds) and the arguments (``critic``: where the loss critic's checkpoint lies, as shown)."""
    import pandas as pd

    parts = rows if isinstance(rows, list) else [rows]
    raw = pd.concat([p if isinstance(p, pd.DataFrame) else pd.DataFrame(p) for p in parts], ignore_index=True)
    thread_words = "one torch thread" if threads == 1 else f"{threads} torch threads"
    return (table.attrs["note"] + f". Ours: mean of {steps} timed iterations after {warmup} warm-up, each setting in a "
            f"fresh process, {rounds} round(s) of every setting (the order reversed every other round; with several, "
            f"`x without loss` is the geometric mean of the rounds' ratios and its 95 % CI the t-interval over rounds), "
            f"{thread_words}, synth-voca train clips ({raw['mean_frames'].mean():.0f} frames on average, "
            f"{n_vertices} vertices), critic `ours` ({critic}). "
            f"`x without loss`: time / the same model's time without the loss. `peak mem`: {' / '.join(raw['mem_method'].unique())}; "
            "`iter mem`: what the iterations add to the memory held before the first one. Set-up (before the first "
            "iteration, not timed; the cached setting reads the speech embeddings from the training runs' on-disk cache, "
            "embedding only clips missing from it): "
            + ", ".join(f"{MODEL_LABELS[r['model']]} {r['setting']} {r['setup_s']:.0f} s" for _, r in raw.iterrows())
            + ". Shared machine: timings vary by ~10-20% between runs.")


# -- memory ---------------------------------------------------------------------------------------------
def _status_kb(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_rss_peak() -> tuple[float | None, str]:
    """Return freed heap pages to the system, reset the resident-set high-water mark; return (current RSS
    in bytes, method description)."""
    import ctypes
    import ctypes.util

    trimmed = ""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
        trimmed = ", after malloc_trim"
    except (OSError, AttributeError):
        pass
    try:
        Path("/proc/self/clear_refs").write_text("5")
        rss = _status_kb("VmRSS")
        if rss is not None:
            return rss * 1024.0, f"RSS high-water mark (VmHWM) over the iterations, fresh process{trimmed}"
    except OSError:
        pass
    return None, "ru_maxrss of the whole run (data loading included)"


def _rss_peak() -> float:
    import resource

    hwm = _status_kb("VmHWM")
    if hwm is not None:
        return hwm * 1024.0
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale)


def _device_name(dev: Any) -> str:
    import torch

    if dev.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(dev)})"
    import platform

    return f"cpu ({platform.processor() or platform.machine()})"


# -- subprocess ------------------------------------------------------------------------------------------
def _run_isolated(req: CostRequest) -> dict[str, Any]:
    """Run :func:`measure` in a fresh ``python -m p3d.analysis.training_cost`` process. Bad input found there (an
    :class:`InputError`: unknown model or device, a folder that is no corpus, ...) is raised here as the same one-line
    InputError; any other failure is a RuntimeError with the end of the child's traceback."""
    env = dict(os.environ)
    if req.threads is not None:
        env["OMP_NUM_THREADS"] = str(req.threads)
        env["MKL_NUM_THREADS"] = str(req.threads)
    with tempfile.TemporaryDirectory(prefix="p3d-cost-") as tmp:
        out = Path(tmp) / "row.json"
        cmd = [sys.executable, "-m", "p3d.analysis.training_cost", json.dumps(dataclasses.asdict(req)), str(out)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode == 2 and out.exists():
            refused = json.loads(out.read_text())
            if isinstance(refused, dict) and "input_error" in refused:
                raise InputError(str(refused["input_error"]))
        if proc.returncode != 0 or not out.exists():
            tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
            raise RuntimeError(f"iteration_cost: the measurement of {req.model_name}/{req.setting} failed "
                               f"(exit {proc.returncode}):\n{tail}")
        return json.loads(out.read_text())


def _child(argv: Sequence[str]) -> int:
    from p3d.atomic import write_json

    if len(argv) != 2:
        print("usage: python -m p3d.analysis.training_cost REQUEST_JSON OUT_JSON (internal)", file=sys.stderr)
        return 2
    raw: Mapping[str, Any] = json.loads(argv[0])
    req = CostRequest(**{**raw, "train_dirs": tuple(raw["train_dirs"])})
    try:
        row = measure(req)
    except InputError as exc:  # bad input: handed back to the parent as its one-line message (_run_isolated)
        write_json(argv[1], {"input_error": str(exc)})
        return 2
    write_json(argv[1], row)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.exit(_child(sys.argv[1:]))
