"""The paper's claims, each judged from the tables that ``make figures`` wrote: ``results/claims.md``.

A :class:`Claim` pairs a sentence of the paper and the paper's own evidence (built from :mod:`p3d.paper`, labelled
as the paper's) with a *judge*: a function that reads p3d's result tables (``results/tables/*.csv``) and returns
an :class:`Assessment` (p3d's evidence with its 95 % CIs, the verdict, and which referee / metric decided it).
Nothing here is typed by hand: change a result and the report changes with it.

**Verdicts** (:data:`VERDICTS`). A claim is made of *cases*: one (model, metric) effect, or one measured
property. Each case is an effect with a 95 % CI, and the claim predicts its sign (the paper's direction:
"the loss improves PLRS" predicts a positive PLRS change):

- ``reproduced``: the CI excludes 0 in the paper's direction;
- ``contradicted``: the CI excludes 0 the other way;
- ``inconclusive``: the CI includes 0. The **minimum detectable effect** at this sample size
  (:func:`p3d.stats.minimum_detectable_effect`: 80 % power, two-sided 5 %, about 1.43 CI half-widths) is
  stated beside the paper's own effect, so that a reader sees whether the test could have seen an effect of
  the paper's size (the paper's effect is on the real data, ours on the synthetic corpus: same metric, not
  the same data; compare orders of magnitude);
- ``not testable here``: the claim needs what this environment cannot have (human participants, the real
  datasets); the reason is given;
- ``not measured`` (a status, not a verdict on the claim): the table the judge needs does not exist yet
  (run ``make figures``).

**Aggregation** (:func:`aggregate`), for a claim over several cases ("for all three models", or several
metrics): ``reproduced`` only if every case the claim covers was measured and reproduced; ``contradicted`` if
any case is contradicted (the claim says *all*: one clear counter-example refutes it); otherwise
``inconclusive``. A case the claim covers but p3d did not measure (e.g. the critic ablation run for
FaceFormer only) therefore caps the verdict at ``inconclusive``. Cases without an interval (a property test
that reports only whether it passed) count as reproduced when they pass and inconclusive when not.

**Unconverged training.** A paired case (Tables 2-4, and FDD) one of whose compared talkers did not converge, by
``convergence.csv`` joined with the run tables' per-seed ``run`` column (:func:`p3d.claims.lengths.unconverged_runs`:
under the plateau rule it hit its step cap, or its rule never decided; or it did not finish; an equal-length run by
the own-length run it continued), is ``inconclusive`` whatever its CI, and its text names the runs: its numbers
measure a training stopped before its own end, not the model the claim is about. The same rule covers the
critics a case rests on (:func:`p3d.claims.lengths.unconverged_critics`, the same test on their ``convergence.csv``
rows): for an arm trained with a perceptual loss, its loss critic (``loss_critics/<critic>`` of the talker's critic
pipeline), the critic it was fine-tuned from and, for ``ours``, its stage 1 (:func:`p3d.claims.lengths.critic_runs`);
for every PLRS case, the PLRS evaluator and its own stage 1; for the held-out retrieval of the 2D-prior claim and
the representation properties, the critics (and stage 1) of pipeline 0 that notebooks 03 and 04 measure.

**Lip readability** (claims on PLRS). PLRS is a *referee*: a learned speech-mesh evaluator whose verdicts are
only as good as the evaluator. When ``plrs_validity.csv`` exists (columns ``variant, degradation,
mean_minus_gt, ci_low, ci_high, n_clips``: each referee's score of degraded ground truth minus its score of
the ground truth), a referee is *valid* when ``ci_high < 0`` for every degradation (it scores every
degradation clearly below the truth), and PLRS cases are judged on the valid referees only: the claim is
judged once per valid referee, and the referees must agree (all ``reproduced`` or all ``contradicted``),
else ``inconclusive`` (a disagreement between valid referees is not evidence either way). The official
evaluator's PLRS (variant :data:`OFFICIAL_PLRS`) is always shown beside. A referee ``v``'s effects are read
from the effect tables' rows labelled :func:`plrs_metric` (``PLRS`` for the official one, ``PLRS [v]``
otherwise). Without ``plrs_validity.csv`` the official PLRS decides, and the evidence says so.

**Seeds.** The CIs of multi-seed arms combine the clips' bootstrap with the seeds' spread under Student's t
(:func:`p3d.stats.seed_clip_interval`: with 3-5 seeds a bootstrap over seeds is far too narrow); beside
each case of Tables 2-4 whose per-seed values ``config1_results.csv`` / ``config2_results.csv`` hold, the evidence also counts how many seeds'
own changes (with minus without, the same seed) share the pooled change's sign
(:func:`p3d.claims.seeds.seed_changes`). That count is not part of the rule: it shows whether an effect rests on
a few seeds, as a second machine (which retrains along other trajectories, like other seeds) would reveal.

**Training length.** Each talker stops on its own validation plateau, so the two arms of one seed may train for
different lengths, unless the run compares them at equal length (each continued to the longest stop of its model
and seed's arms, as the ``full`` spec does); the evidence lists each comparison's steps per seed (and the own stops
of equal-length runs), and :func:`length_sensitivity` (:mod:`p3d.claims.lengths`) counts how often the
longer-trained arm of a seed pair is the better one. Neither enters the rule.

**Comparing two runs** (:func:`compare_verdicts`). Each :class:`Assessment` lists the cases its verdict was judged
on (:class:`CaseBasis`: label, PLRS referee, training seeds and test clips where the tables record them). Two runs
reproduce a verdict only when they reach it on the same cases: a verdict reached on other models, referees, seed
counts or clip counts (e.g. one run measured Table 2 for FaceFormer only: "inconclusive", as the other's over all
three models) is counted apart, with the cases that differ.

:data:`INVENTORY` lists every table and figure of the paper with the file(s) p3d writes for it, or why it
cannot be made here; :func:`inventory` checks which exist, :func:`write_inventory` writes ``inventory.md``.

The code: :mod:`p3d.claims.verdicts` (the rules), :mod:`p3d.claims.tables` (reading the result tables),
:mod:`p3d.claims.seeds` (the per-seed changes behind the paired effects), :mod:`p3d.claims.judges` (one judge per
claim), :mod:`p3d.claims.lengths` (training length beside the paired
effects), :mod:`p3d.claims.catalogue` (:data:`CLAIMS`, :func:`assess`),
:mod:`p3d.claims.report` (``claims.md``, the inventory, the README blocks: the claims table and
:func:`findings_markdown`, the effects of Tables 2-4; :func:`compare_verdicts` of two runs' tables),
:mod:`p3d.claims.cli` (``p3d claims TABLES [--against TABLES_B]``); this package re-exports their API.
"""

from __future__ import annotations

from p3d.claims.catalogue import CLAIMS, assess, paper_changes
from p3d.claims.report import (
    INVENTORY,
    README_END,
    README_START,
    RULES_MARKDOWN,
    claims_markdown,
    compare_verdicts,
    comparison_markdown,
    continuation_cost,
    findings_markdown,
    inventory,
    inventory_markdown,
    measured_in_neither,
    readme_markers,
    reproduces,
    run_design_markdown,
    summary_markdown,
    update_readme,
    verdict_table_markdown,
    write_inventory,
)
from p3d.claims.lengths import LENGTH_SENSITIVITY_STEM, length_sensitivity, training_steps, training_steps_note
from p3d.claims.tables import MODELS, VALIDITY_STEM, valid_referees
from p3d.claims.verdicts import (
    OFFICIAL_PLRS,
    VERDICTS,
    Assessment,
    Case,
    CaseBasis,
    Claim,
    aggregate,
    combine_referees,
    plrs_metric,
)

__all__ = [
    "CLAIMS", "INVENTORY", "LENGTH_SENSITIVITY_STEM", "MODELS", "OFFICIAL_PLRS", "README_END", "README_START", "RULES_MARKDOWN",
    "VALIDITY_STEM", "VERDICTS", "Assessment", "Case", "CaseBasis", "Claim", "aggregate", "assess", "claims_markdown",
    "combine_referees", "compare_verdicts", "comparison_markdown", "continuation_cost", "findings_markdown", "inventory",
    "inventory_markdown", "length_sensitivity", "measured_in_neither", "paper_changes", "plrs_metric", "readme_markers", "reproduces", "run_design_markdown", "summary_markdown", "training_steps", "training_steps_note", "update_readme",
    "valid_referees", "verdict_table_markdown", "write_inventory",
]
