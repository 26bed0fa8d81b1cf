#!/usr/bin/env python
"""Table 3 (the critic ablation) or Table 4 (Config 2) for one model at several talker seeds, beside the `full` outputs.

``SPECS["full"]`` trains Tables 3 and 4 at three seeds for all three models, in one grid with everything else. This
trains one model's arms of one table alone, at seeds ``0 .. N-1``, with the same grid, recipes and fixed loss weight
as the notebooks, prerequisites included (the corpora, both stage 1s, the critics, the loss critics, the PLRS
evaluator):

- ``--table 3`` (notebook 06): critics ours, 3D SyncNet and w/o 2D prior on ``synth-voca``
  (``spec_for(preset, table3_seeds=N, ablation_models=(model,))``), compared by
  :func:`p3d.experiments.critic_pairs`;
- ``--table 4`` (notebook 07): trained on ``synth-voca`` only, on ``synth-voca`` + ``synth-mead``, and on both with
  critic ours, all tested on ``synth-mead`` (``spec_for(preset, table4_seeds=N, table4_models=(model,))``),
  compared step by step by :func:`p3d.experiments.config2_pairs`.

The effects are computed as the notebooks compute them: pooled over the seeds (paired by seed,
:func:`p3d.experiments.loss_effects`), and for each seed alone (:func:`p3d.experiments.per_seed_effects`). It writes ``effects.csv``, ``per_seed.csv``,
``consistency.csv`` / ``.md`` (:func:`p3d.experiments.seed_consistency`: pooled beside each seed, with the
paper's change), ``run_seconds.csv``, ``convergence.csv`` and ``provenance.json`` under ``--out`` (default
``table<T>_seeds/<model>/`` in the preset's results folder, e.g. ``results/table3_seeds/faceformer/``; never the
notebooks' outputs, never another model's).
Finished runs in ``runs/<preset>`` are reused, so on a checkout that already ran ``make figures PRESET=full`` only
the extra seeds train::

    .venv/bin/python scripts/table_seeds.py [--table 3] [--model faceformer] [--seeds 3] [--out DIR] [--workers 2]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from p3d import experiments as ex
from p3d.atomic import atomic_path, write_json
from p3d.corpus import Corpus
from p3d.paths import output_dirs
from p3d.provenance import git_commit
from p3d.train.convergence import convergence_table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", type=int, default=3, choices=(3, 4))
    ap.add_argument("--model", default="faceformer", choices=ex.MODELS)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--preset", default="full")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None,
                    help="default: table<T>_seeds/<model>/ in the preset's results folder")
    args = ap.parse_args()
    if args.seeds < 1 or args.workers < 1:
        ap.error("--seeds and --workers must be at least 1")
    t0, commit = time.time(), git_commit()  # the code that trains, not whatever is checked out at the end
    dirs = output_dirs(args.preset)
    out = args.out or dirs.results / f"table{args.table}_seeds" / args.model
    table3 = args.table == 3
    test = "synth-voca" if table3 else "synth-mead"
    ex.prepare_corpora(args.preset, dirs, names=("synth-lrs3", "synth-voca", *(() if table3 else ("synth-mead",))),
                       workers=args.workers)
    if table3:
        # the critic-ours runs it compares with are Table 2's: at least as many Table-2 seeds as Table-3 seeds
        spec = ex.spec_for(args.preset, table3_seeds=args.seeds, ablation_models=(args.model,),
                           table2_seeds=max(args.seeds, ex.spec_for(args.preset).table2_seeds))
    else:
        spec = ex.spec_for(args.preset, table4_seeds=args.seeds, table4_models=(args.model,))
    lay = ex.layout(dirs, args.preset)
    weight = spec.fixed_weight(Corpus.open(lay.corpus("synth-voca")))
    if table3:
        exps = [spec.experiment(args.model, c, ex.CONFIG1, s, weight=weight)
                for s in range(args.seeds) for c in ("ours", *ex.ABLATION_CRITICS)]
    else:
        exps = spec.config2(weight)
    # at equal length (the full spec) each run continues to its whole comparison group's longest stop, as in
    # `make figures PRESET=full`, so the group's other arms (Tables 2-4 of the model and seed) train too
    grid = ex.run_grid(exps, dirs, workers=args.workers, n_resamples=spec.n_resamples, progress=sys.stderr.isatty(),
                       groups=spec.length_groups(weight))
    results = grid.results
    hubness_weight, _ = ex.plrs_hubness_weight(args.preset, dirs)
    intensity_weight, _ = ex.plrs_intensity_weight(args.preset, dirs)
    referee_options = dict(hubness_weight=hubness_weight, intensity_weight=intensity_weight,
                           gt_amplitude=ex.gt_lip_amplitudes(args.preset, dirs, test, "test"))
    pairs_of = ex.critic_pairs if table3 else ex.config2_pairs
    pooled_effects = ex.loss_effects(
        pairs_of(ex.arms(results, n_resamples=spec.n_resamples), [args.model],
                 prefix=f"{ex.MODEL_LABELS[args.model]}, seeds 0-{args.seeds - 1}: "),
        n_resamples=spec.n_resamples, **referee_options)
    # each seed alone (as notebooks 06 and 07 write it), labelled "seed <s>: <comparison>"
    by_seed = ex.per_seed_effects(results, lambda a: pairs_of(a, [args.model], prefix=""),
                                  n_resamples=spec.n_resamples, **referee_options)
    seed_effects = {int(s): rows.drop(columns="seed").assign(comparison=f"seed {s}: " + rows["comparison"])
                    for s, rows in by_seed.groupby("seed")}
    per_seed = pd.concat(seed_effects.values(), ignore_index=True) if seed_effects else by_seed.drop(columns="seed")
    consistency = ex.seed_consistency(pooled_effects, seed_effects, ex.paper_changes(args.table, args.model))
    convergence = convergence_table(lay.training_runs(exps, critic_pipelines=spec.critic_pipelines), root=lay.runs)
    provenance = {"git_commit": commit, "preset": args.preset, "table": args.table, "model": args.model,
                  "seeds": args.seeds, "test": test, "loss_weight": weight,
                  "plrs_weights": {"hubness": hubness_weight, "intensity": intensity_weight},
                  "grid_wall_s": grid.wall_s, "total_s": round(time.time() - t0, 1)}
    outputs = {"effects.csv": pooled_effects, "per_seed.csv": per_seed, "run_seconds.csv": ex.run_timing(results),
               "convergence.csv": convergence}
    for name, frame in outputs.items():  # every table computed first, then written, provenance last
        with atomic_path(out / name) as tmp:
            frame.to_csv(tmp, index=False)
    ex.write_tables({"consistency": (
        consistency, f"Table {args.table} for {ex.MODEL_LABELS[args.model]} at {args.seeds} seeds (preset "
        f"`{args.preset}`, test {test}): pooled effects beside each seed's",
        "change = after - before (Table 3: ours minus the ablation critic); pooled: paired bootstrap over the seeds "
        "and test clips; 'seeds sharing its sign': how many seeds' own changes have the pooled change's sign. "
        "paper's change: the paper's own Table on the real data (VOCASET / MEAD-3D), not a p3d result and not in "
        "p3d's units; PLRS-c/-p/-e are p3d's referees, which the paper does not report.")}, out)
    write_json(out / "provenance.json", provenance)
    print(pooled_effects.to_string())
    print(per_seed.to_string())

if __name__ == "__main__":
    main()
