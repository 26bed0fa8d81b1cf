"""The experiments of the paper's Tables 2, 3, 4 and S7: talking heads with and without the perceptual loss.

One :class:`TalkerExperiment` is one talking-head training request (model, critic, training corpora, preset,
seed, weight, stopping rule, critic pipeline) plus the split it is evaluated on; an :class:`ExperimentSpec`
(:func:`spec_for`) holds a preset's whole grid: models, arms, seeds per table, critic pipelines, the stopping
rule and the loss-weight rule. :func:`run_experiment` does all of one experiment: :func:`train_experiment`
trains its talker (reusing a finished run of the same request, resuming an unfinished one), then
:func:`predict_and_evaluate` predicts the evaluation split (:func:`p3d.predict.predict_split`: every clip under
every training identity, the official protocol, or under ``conditions`` of them, :attr:`TalkerExperiment.conditions`)
and evaluates it (:func:`p3d.evaluate.evaluate`: MTM, LVE, FDD, SLCC, and PLRS with the independent evaluator,
PLRS-c beside it).
:func:`plan` orders every dependency (stage 1, the critics and the PLRS evaluator, the loss critics, the data
references, the talkers, the evaluations) and :func:`run_grid` runs the plan in parallel processes. The table
builders turn results, or arms pooled over seeds (:func:`arms`), into Tables 2, 3, 4 and S7 with 95% CIs and the
paper's own numbers in separate, labelled columns.

The modules: :mod:`~p3d.experiments.spec` (what is run), :mod:`~p3d.experiments.layout` (where every file
lives), :mod:`~p3d.experiments.runs` (training, prediction, evaluation of one run),
:mod:`~p3d.experiments.plan` and :mod:`~p3d.experiments.grid` (the dependency order and its execution),
:mod:`~p3d.experiments.records` (frozen results), :mod:`~p3d.experiments.summary` (CIs over clips and seeds)
and :mod:`~p3d.experiments.tables` (the paper's tables).

**Configurations** (paper Sec. 6.1): Config 1 trains and tests on ``synth-voca`` (VOCASET's stand-in);
Config 2 trains on ``synth-voca`` + ``synth-mead`` and tests on ``synth-mead`` (MEAD-3D's stand-in).

**Loss critics** (paper C.2): the speech-mesh critic (paper Sec. 4) trained on ``synth-lrs3`` (identity half 1,
:func:`p3d.train.api.train_critic`), fine-tuned on the ``synth-voca`` train split (the paper fine-tunes on
VOCASET train). The PLRS evaluator, its own stage 1 included, is trained on the other identity half of
``synth-lrs3`` with its own seed (:func:`p3d.train.api.train_evaluator`; nothing shared with a critic pipeline)
and never on the talking-head corpora. At the ``full`` preset the
critics form several independent pipelines (stage 1 + critic + fine-tuning, each with its own seed); talker
seed ``s`` uses pipeline ``s % critic_pipelines``.

**Loss weight.** The paper's 1e-7 (official FaceFormer code) multiplies an InfoNCE of a few nats against
FaceFormer's vertex MSE in metres (about 1e-6 on VOCASET); CodeTalker's and SelfTalk's own losses are on other
scales, and their weights are NOT FOUND in the paper. At ``smoke`` (and in the sensitivity analysis of
``make figures EXTRA=1``) p3d sets ``W = kappa * L_model``, where ``L_model`` (:func:`loss_scale`) is the median
model loss over the second half of the same model's baseline run, and ``kappa`` is chosen on the **validation**
split with critic ``ours`` (:func:`select_kappa`). At ``cpu`` and ``full`` the weight is fixed in advance, so no
metric that then judges the loss chooses it (:meth:`ExperimentSpec.fixed_weight`):
:func:`p3d.losses.weight.carried_loss_weight`, the paper's 1e-7 carried from VOCASET's motion scale (estimated
from FaceFormer's start-of-training MSE, :data:`p3d.losses.weight.VOCASET_MOTION_RMS`) to the training corpus'.

**Seeds and confidence intervals.** A run's CI is a percentile bootstrap over test clips (a clip's predictions
under every condition move together); an arm of several seeds adds the seeds' spread under Student's t to the
clips' bootstrap, crossed (:func:`p3d.stats.seed_clip_interval`); effects pair the two arms' runs by seed and
their predictions by file where both are defined (:func:`paired_difference`).

**Stopping.** At ``full`` every training stops at a validation plateau (:mod:`p3d.train.convergence`,
``stop="plateau"``, the step count as the cap; the talkers with the preset's longer window and patience,
:attr:`TalkerExperiment.stop_options`); :func:`p3d.train.convergence.convergence_table` over
:meth:`RunLayout.training_runs` tabulates where each stopped. With ``ExperimentSpec.equal_length`` the tables
compare runs of equal length: each arm's own-length run is continued, without the rule, to the longest stop of its
comparison group (the runs of one model and seed, :func:`equal_length_groups`; :func:`train_at_equal_length`).

Output layout: :mod:`p3d.experiments.layout`.
"""
from p3d.experiments.grid import (GridResult, WeightChoice, choose_weight, config_weight, critical_path_s, preset_grid,
                                  record_weight_choice, run_grid, simulate_grid)
from p3d.experiments.layout import (RunLayout, baseline_encoder_runs, corpus_dir, data_root, layout,
                                    loss_comparison_dirs, prediction_dirs, run_dir, runs_root)
from p3d.experiments.plan import Task, eval_key, plan
from p3d.experiments.records import ArmResult, RunResult, group_arms, runs_of
from p3d.experiments.runs import (base_critic, clip_mtm, data_reference, equal_length_group, evaluator, grid_weight,
                                  kappa_selection,
                                  gt_lip_amplitudes, train_at_equal_length,
                                  loss_critic, loss_ratio, loss_scale, metric_validation_talkers,
                                  plrs_hubness_weight, plrs_intensity_weight,
                                  predict_and_evaluate, prepare_corpora, resolve_weight, run_experiment,
                                  share_earlier_stages, train_experiment, validation_battery)
from p3d.experiments.spec import (ABLATION_CRITICS, CONFIG1, CONFIG2, CRITIC_CORPUS, CRITIC_LABELS, CRITICS, KAPPA_CANDIDATES,
                                  LENGTHS, equal_length_groups,
                                  LOSS_CRITIC_CORPUS, LVE_TOLERANCE, MODEL_LABELS, MODELS, PRESETS, SPECS, SPLITS,
                                  TALKER_CORPORA, ExperimentSpec, TalkerExperiment, arm_name, config1_experiments,
                                  config2_experiments, selection_experiments, spec_for)
from p3d.experiments.summary import arms, paired_difference, summarise, summarise_runs
from p3d.experiments.tables import (BETTER, BETTER_BY_LABEL, CONFIG2_SETTINGS, EFFECT_TABLES, FDD_SCALE, LVE_SCALE, METRIC_LABELS,
                                    PAPER_DATA_MEAD, PAPER_DATA_VOCASET, PAPER_NOTE, PAPER_TABLE3, PAPER_TABLE4,
                                    PAPER_TABLE_S7, PER_CLIP_COLUMNS, chosen_kappa, config2_pairs, config2_settings,
                                    critic_pairs, diagnostics_effects, find, grids_timing, levelwise_slcc_bars,
                                    long_form, loss_effects, loss_pairs, merge_seed_tables, ours_note, paper_changes,
                                    per_clip_frame, runs_table,
                                    per_seed_effects, run_timing, seed_consistency, select_kappa, summary_frame, table2,
                                    table3, table4, table_s7, timing_table, weight_table_name, with_plrs_enrolled,
                                    with_plrs_partial, write_long_form, write_tables)

__all__ = [
    "ABLATION_CRITICS", "CONFIG1", "CONFIG2", "CRITIC_CORPUS", "LOSS_CRITIC_CORPUS", "TALKER_CORPORA", "MODELS", "CRITICS", "PRESETS",
    "SPLITS", "MODEL_LABELS", "CRITIC_LABELS", "KAPPA_CANDIDATES", "LVE_TOLERANCE", "LVE_SCALE", "FDD_SCALE",
    "BETTER", "BETTER_BY_LABEL", "METRIC_LABELS", "PAPER_DATA_MEAD", "PAPER_DATA_VOCASET", "PAPER_NOTE", "PAPER_TABLE3", "PAPER_TABLE4",
    "PAPER_TABLE_S7", "SPECS",
    "TalkerExperiment", "ExperimentSpec", "arm_name", "spec_for", "RunLayout", "layout", "baseline_encoder_runs", "prediction_dirs", "loss_comparison_dirs",
    "RunResult",
    "ArmResult", "GridResult", "preset_grid", "Task", "group_arms", "runs_of", "arms",
    "data_root", "runs_root", "run_dir", "corpus_dir", "prepare_corpora", "base_critic", "loss_critic", "evaluator",
    "loss_scale", "loss_ratio", "resolve_weight", "grid_weight", "kappa_selection", "train_experiment", "share_earlier_stages", "data_reference",
    "predict_and_evaluate", "run_experiment", "clip_mtm", "summarise", "summarise_runs", "paired_difference", "plan",
    "equal_length_groups", "equal_length_group", "train_at_equal_length", "LENGTHS",
    "eval_key", "run_grid", "simulate_grid", "critical_path_s", "select_kappa", "chosen_kappa", "weight_table_name",
    "record_weight_choice", "selection_experiments", "config1_experiments",
    "config2_experiments", "summary_frame", "per_clip_frame", "PER_CLIP_COLUMNS", "find", "ours_note", "table2",
    "table3", "table4", "table_s7",
    "loss_effects", "config2_pairs", "critic_pairs", "paper_changes", "seed_consistency", "diagnostics_effects",
    "with_plrs_partial", "plrs_hubness_weight", "with_plrs_enrolled", "plrs_intensity_weight",
    "validation_battery", "gt_lip_amplitudes", "metric_validation_talkers",
    "timing_table", "grids_timing", "run_timing", "runs_table", "long_form",
    "write_long_form", "write_tables", "EFFECT_TABLES", "merge_seed_tables", "per_seed_effects", "loss_pairs",
]
