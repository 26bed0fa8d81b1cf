"""p3d.claims.lengths: the arms' training steps beside the paired effects, and whether the effects follow them."""

import math

import pandas as pd
import pytest
from scipy.stats import binomtest

from p3d import claims
from p3d.claims.lengths import training_steps, training_steps_note, length_sensitivity

#: seed -> (steps without the loss, steps with it, LVE change with - without)
_SEEDS = {0: (500, 500, -3.0), 1: (500, 1000, -1.0), 2: (1000, 500, 1.0), 3: (600, 1000, 1.0)}


def _write(tmp_path, convergence=True, per_seed_table=False):
    rows = []
    for s, (_, _, change) in _SEEDS.items():
        for critic, lve, plrs in (("none", 10.0, 0.5), ("ours", 10.0 + change, 0.5 + change)):
            for metric, value in (("lve", lve), ("plrs", plrs), ("slcc", 0.3)):
                rows.append({"run": f"faceformer_{critic}_seed{s}", "seed": s, "model": "faceformer",
                             "critic": critic, "train": "synth-voca", "metric": metric, "level": "", "value": value})
    rows += [{"run": "faceformer_none_seed0", "seed": "all", "model": "faceformer", "critic": c,
              "train": "synth-voca", "metric": "lve", "level": "", "value": 99.0} for c in ("none", "ours")]
    rows.append({"run": "faceformer_syncnet3d_seed0", "seed": 0, "model": "faceformer", "critic": "syncnet3d",
                 "train": "synth-voca", "metric": "lve", "level": "", "value": 1.0})  # Table 3's, one arm only
    common = {"test": "synth-voca", "split": "test", "loss_weight": "", "n_clips": 8, "n_seeds": 1}
    pd.DataFrame([{**common, **r, "ci_low": r["value"] - 1, "ci_high": r["value"] + 1} for r in rows]
                 ).to_csv(tmp_path / "config1_results.csv", index=False)
    if convergence:
        conv = [{"run": f"talkers/faceformer_{c}_seed{s}", "kind": "talker", "model": "faceformer", "seed": s,
                 "steps": steps[i], "converged": True}
                for s, steps in _SEEDS.items() for i, c in enumerate(("none", "ours"))]
        conv.append({"run": "stage1", "kind": "stage1", "model": "", "seed": 0, "steps": 2350, "converged": True})
        pd.DataFrame(conv).to_csv(tmp_path / "convergence.csv", index=False)
    if per_seed_table:
        pd.DataFrame([{"comparison": "FaceFormer", "seed": s, "metric": m, "change": sign * ch}
                      for s, (_, _, ch) in _SEEDS.items() for m, sign in (("LVE (1e-5 m²)", 1), ("PLRS-e", -1))]
                     ).to_csv(tmp_path / "table2_loss_effects_per_seed.csv", index=False)


def test_training_steps_pair_each_seeds_arms_from_the_run_table_and_convergence(tmp_path):
    _write(tmp_path)
    steps = training_steps(tmp_path, "table2_loss_effects")
    assert steps == {"FaceFormer": {str(s): (a, b) for s, (a, b, _) in _SEEDS.items()}}
    assert training_steps(tmp_path, "table3_critic_effects") == {}   # no ours/syncnet3d pair with both steps
    assert training_steps(tmp_path, "table_s7_fdd") == {}
    note = training_steps_note(steps)
    assert "FaceFormer 500→500, 500→1000, 1000→500, 600→1000." in note
    assert "3 of 4 seed pairs differ in length by more than a quarter" in note
    assert training_steps_note(steps, ["CodeTalker"]) == ""
    assert "No seed pair differs" in training_steps_note({"X": {"0": (800, 1000)}})   # 1.25x is not "more"
    (tmp_path / "convergence.csv").unlink()
    assert training_steps(tmp_path, "table2_loss_effects") == {}


def test_length_sensitivity_counts_pairs_whose_longer_arm_is_better(tmp_path):
    """LVE (lower is better): seed 1 trains the loss arm longer and it is better, seed 2 shorter and worse, seed 3
    longer and worse: 2 of 3 unequal pairs. PLRS (higher is better) with the same raw changes: 1 of 3."""
    _write(tmp_path)
    df = length_sensitivity(tmp_path).set_index("metric")
    assert set(df.index) == {"lve", "plrs"}                      # slcc has no direction; the 'all' rows are not seeds
    assert df.loc["lve", ["pairs", "unequal", "longer_better"]].tolist() == [4, 3, 2]
    assert df.loc["lve", "sign_test_p"] == pytest.approx(binomtest(2, 3).pvalue)
    assert df.loc["plrs", "longer_better"] == 1
    assert df.loc["plrs", "longer_better_share"] == pytest.approx(1 / 3)
    # the per-seed effect table, when present, gives every metric under its own label instead
    _write(tmp_path, per_seed_table=True)
    df = length_sensitivity(tmp_path).set_index("metric")
    assert set(df.index) == {"LVE (1e-5 m²)", "PLRS-e"}
    assert df.loc["LVE (1e-5 m²)", "longer_better"] == 2 and df.loc["PLRS-e", "longer_better"] == 2
    # without unequal pairs: no test
    _SEEDS_EQUAL = pd.read_csv(tmp_path / "convergence.csv").assign(steps=700)
    _SEEDS_EQUAL.to_csv(tmp_path / "convergence.csv", index=False)
    df = length_sensitivity(tmp_path)
    assert (df["unequal"] == 0).all() and df["sign_test_p"].map(math.isnan).all()


def test_claims_and_findings_show_the_steps_and_the_count(tmp_path):
    _write(tmp_path)
    pd.DataFrame([{"comparison": m, "metric": "LVE (1e-5 m²)", "without": 1, "with": 0.9, "change": -0.1,
                   "change CI low": -0.5, "change CI high": 0.3, "verdict": "no clear change", "n_seeds": 4}
                  for m in ("FaceFormer", "CodeTalker", "SelfTalk")]).to_csv(tmp_path / "table2_loss_effects.csv",
                                                                         index=False)
    r = claims.assess(tmp_path).set_index("key").loc["loss-lve"]
    assert "Training steps at each arm's stop" in r["p3d"] and "FaceFormer 500→500, 500→1000" in r["p3d"]
    assert "convergence" in r["sources"]
    md = claims.findings_markdown(tmp_path)
    assert "lve 2 of 3 (p = 1)" in md and "plrs 1 of 3 (p = 1)" in md
    assert "FaceFormer 500→500, 500→1000, 1000→500, 600→1000" in md
    (tmp_path / "convergence.csv").unlink()
    r = claims.assess(tmp_path).set_index("key").loc["loss-lve"]
    assert "Training steps" not in r["p3d"] and "convergence" not in r["sources"]


def test_equal_length_runs_show_the_common_length_and_the_own_stops(tmp_path):
    """Runs continued to their group's longest stop (``continued_from``: where their own rule stopped them) train
    both arms of a seed equally long: the note says so and shows the own stops; no pair counts as unequal."""
    _write(tmp_path)
    conv = pd.read_csv(tmp_path / "convergence.csv")
    talker = conv["kind"] == "talker"
    own = conv["steps"].copy()
    conv.loc[talker, "continued_from"] = own[talker]
    conv.loc[talker, "steps"] = conv[talker].groupby("seed")["steps"].transform("max")
    conv.to_csv(tmp_path / "convergence.csv", index=False)
    assert training_steps(tmp_path, "table2_loss_effects")["FaceFormer"] == {
        "0": (500, 500), "1": (1000, 1000), "2": (1000, 1000), "3": (1000, 1000)}
    assert training_steps(tmp_path, "table2_loss_effects", own_stop=True)["FaceFormer"] == {
        "0": (500, 500), "1": (500, 1000), "2": (1000, 500), "3": (600, 1000)}
    pd.DataFrame([{"comparison": m, "metric": "LVE (1e-5 m²)", "without": 1, "with": 0.9, "change": -0.1,
                   "change CI low": -0.5, "change CI high": 0.3, "verdict": "no clear change", "n_seeds": 4}
                  for m in ("FaceFormer", "CodeTalker", "SelfTalk")]).to_csv(tmp_path / "table2_loss_effects.csv",
                                                                         index=False)
    md = claims.findings_markdown(tmp_path)
    assert ("each arm continued without its stopping rule to the longest stop among its model and seed's arms): "
            "FaceFormer 500→500, 1000→1000, 1000→1000, 1000→1000; where their own validation plateaus had stopped "
            "them: FaceFormer 500→500, 500→1000, 1000→500, 600→1000. No seed pair differs in length by more than a "
            "quarter.") in md
    assert (length_sensitivity(tmp_path)["unequal"] == 0).all()
    evidence = claims.assess(tmp_path).set_index("key").loc["loss-lve", "p3d"]
    assert "own validation plateaus had stopped them: FaceFormer 500→500, 500→1000, 1000→500, 600→1000" in evidence


def test_length_sensitivity_judges_fdd_by_its_magnitude(tmp_path):
    """Signed FDD is GT minus prediction: a longer-trained arm whose FDD goes from -2 to -5 (more spurious upper-face
    motion, |FDD| up) is the worse one, as the FDD claim judges it (was counted as better: signed FDD down)."""
    rows = [{"run": f"faceformer_{c}_seed{s}", "seed": s, "model": "faceformer", "critic": c, "train": "synth-voca",
             "test": "synth-voca", "split": "test", "metric": "fdd", "level": "", "value": v, "ci_low": v, "ci_high": v}
            for s in range(3) for c, v in (("none", -2e-7), ("ours", -5e-7))]
    pd.DataFrame(rows).to_csv(tmp_path / "config1_results.csv", index=False)
    pd.DataFrame([{"run": f"talkers/faceformer_{c}_seed{s}", "kind": "talker", "model": "faceformer", "seed": s,
                   "steps": 1000 if c == "none" else 3000, "converged": True} for s in range(3) for c in ("none", "ours")]
                 ).to_csv(tmp_path / "convergence.csv", index=False)
    row = length_sensitivity(tmp_path, ["table2_loss_effects"]).iloc[0]
    assert (row["metric"], row["pairs"], row["unequal"], row["longer_better"]) == ("fdd_abs", 3, 3, 0)


def test_a_case_whose_arm_did_not_converge_is_at_most_inconclusive_and_says_why(tmp_path):
    """A compared arm's talker that hit its step cap before its validation plateau (``converged`` false under the
    plateau rule), or did not finish, was judged like any other: its effect reproduced the claim and nothing said
    so. Such a case is now inconclusive and names the run; the other models' cases are judged as before. An
    equal-length run (a fixed-length continuation) is judged by the own-length run it continued."""
    from p3d.claims.lengths import unconverged_runs

    _write(tmp_path)
    pd.DataFrame([{"comparison": m, "metric": "LVE (1e-5 m²)", "without": 1, "with": 0.9, "change": -0.1,
                   "change CI low": -0.15, "change CI high": -0.05, "verdict": "better", "n_seeds": 4}
                  for m in ("FaceFormer", "CodeTalker", "SelfTalk")]).to_csv(tmp_path / "table2_loss_effects.csv",
                                                                         index=False)
    conv = pd.read_csv(tmp_path / "convergence.csv").assign(stop="plateau", finished=True)
    conv.to_csv(tmp_path / "convergence.csv", index=False)
    converged = claims.assess(tmp_path).set_index("key").loc["loss-lve"]
    assert converged["verdict"] == "reproduced" and "not deciding" not in converged["p3d"]
    capped = conv["run"] == "talkers/faceformer_ours_seed1"
    conv.assign(converged=conv["converged"].mask(capped, False)).to_csv(tmp_path / "convergence.csv", index=False)
    assert unconverged_runs(tmp_path, "table2_loss_effects") == {
        "FaceFormer": ["seed 1: faceformer_ours_seed1 stopped at its 1000-step cap before its validation plateau"]}
    r = claims.assess(tmp_path).set_index("key").loc["loss-lve"]
    assert ("FaceFormer LVE (1e-5 m²): 1 -> 0.9 (change -0.1 [-0.15, -0.05]; MDE 0.0715 beside the paper's change "
            "-0.266; per seed: 2 of 4 changes share its sign; not deciding: training not converged (`convergence.csv`): seed 1: faceformer_ours_seed1 stopped "
            "at its 1000-step cap before its validation plateau), inconclusive") in r["p3d"]
    assert r["verdict"] == "inconclusive" and "FaceFormer LVE" in r["decided_by"] and "convergence" in r["sources"]
    # unfinished; and a fixed-length run whose converged flag is the criterion at its end is not a cap
    conv.assign(finished=conv["finished"].mask(capped, False)).to_csv(tmp_path / "convergence.csv", index=False)
    assert unconverged_runs(tmp_path, "table2_loss_effects")["FaceFormer"] == [
        "seed 1: faceformer_ours_seed1 unfinished at 1000 steps"]
    conv.assign(stop="steps", converged=False).to_csv(tmp_path / "convergence.csv", index=False)
    assert unconverged_runs(tmp_path, "table2_loss_effects") == {}
    # equal-length runs: the continuation (stop = steps) is judged by its own-length run's rule
    c1 = pd.read_csv(tmp_path / "config1_results.csv")
    c1["run"] = c1["run"].str.replace(r"_seed(\d)$", r"_eq_seed\1", regex=True)
    c1.to_csv(tmp_path / "config1_results.csv", index=False)
    talkers = conv[conv["kind"] == "talker"]
    eq = talkers.assign(run=talkers["run"].str.replace(r"_seed(\d)$", r"_eq_seed\1", regex=True), stop="steps",
                        converged=False)
    own = talkers.assign(converged=talkers["converged"].mask(capped[talkers.index], False))
    pd.concat([conv[conv["kind"] != "talker"], eq, own]).to_csv(tmp_path / "convergence.csv", index=False)
    assert unconverged_runs(tmp_path, "table2_loss_effects") == {"FaceFormer": [
        "seed 1: faceformer_ours_eq_seed1 stopped at its 1000-step cap before its validation plateau (its own-length "
        "run talkers/faceformer_ours_seed1)"]}
    assert "not deciding: training not converged" in claims.assess(tmp_path).set_index("key").loc["loss-lve", "p3d"]


def test_length_sensitivity_leaves_out_a_seed_whose_change_is_undefined(tmp_path):
    """A seed whose per-seed change is NaN (the metric undefined for that seed) has no sign to count: it was counted
    as a pair whose longer-trained arm is not the better one (LVE: 1 of 3 unequal pairs instead of 1 of 2)."""
    _write(tmp_path, per_seed_table=True)
    ps = pd.read_csv(tmp_path / "table2_loss_effects_per_seed.csv")
    ps.loc[(ps["seed"] == 1) & (ps["metric"] == "LVE (1e-5 m²)"), "change"] = float("nan")
    ps.to_csv(tmp_path / "table2_loss_effects_per_seed.csv", index=False)
    rows = length_sensitivity(tmp_path, ["table2_loss_effects"]).set_index("metric")
    lve = rows.loc["LVE (1e-5 m²)"]
    assert (lve["pairs"], lve["unequal"], lve["longer_better"]) == (3, 2, 1)
    assert lve["sign_test_p"] == pytest.approx(binomtest(1, 2).pvalue)
    assert (rows.loc["PLRS-e", "pairs"], rows.loc["PLRS-e", "unequal"], rows.loc["PLRS-e", "longer_better"]) == (4, 3, 2)


def test_the_fdd_claim_lists_convergence_among_its_tables_when_it_read_it(tmp_path):
    """The FDD claim makes a case whose arm did not converge inconclusive from ``convergence.csv``, yet its
    'Tables' named config1_results only, so the table behind the caveat was not among the sources."""
    _write(tmp_path)
    c1 = pd.read_csv(tmp_path / "config1_results.csv")
    fdd = [{**c1.iloc[0].to_dict(), "run": f"{m}_{c}_seed0", "seed": "all", "model": m, "critic": c, "metric": "fdd",
            "value": v, "ci_low": v - 1e-8, "ci_high": v + 1e-8}
           for m in ("faceformer", "codetalker", "selftalk") for c, v in (("none", 3e-7), ("ours", 2e-7))]
    pd.concat([c1, pd.DataFrame(fdd)]).to_csv(tmp_path / "config1_results.csv", index=False)
    conv = pd.read_csv(tmp_path / "convergence.csv").assign(stop="plateau", finished=True)
    capped = conv["run"] == "talkers/faceformer_ours_seed1"
    conv.assign(converged=conv["converged"].mask(capped, False)).to_csv(tmp_path / "convergence.csv", index=False)
    r = claims.assess(tmp_path).set_index("key").loc["loss-fdd"]
    assert "not deciding: training not converged" in r["p3d"] and r["verdict"] == "inconclusive"
    assert r["sources"] == "config1_results, convergence"


def test_lengths_differ_past_a_quarter():
    """Two arms' lengths differ when the later stop is more than a quarter (UNEQUAL_FACTOR 1.25) past the earlier:
    1000 against 1300 steps differ, in either order; 1000 against 1250 do not."""
    note = training_steps_note({"X": {"0": (1000, 1300)}})
    assert "1 of 1 seed pairs differ in length by more than a quarter" in note
    assert "1 of 1 seed pairs differ" in training_steps_note({"X": {"0": (1300, 1000)}})
    assert "No seed pair differs" in training_steps_note({"X": {"0": (1250, 1000)}})
    assert "2 of 3 seed pairs differ" in training_steps_note({"X": {"0": (1000, 1300)}, "Y": {"0": (900, 1000),
                                                                                             "1": (2000, 1000)}})


def test_own_stop_of_a_run_trained_to_its_own_stop_is_its_steps(tmp_path):
    """With ``own_stop``, a run not continued (``continued_from`` empty: it stopped on its own rule, e.g. the
    longest arm of its seed) stopped at its ``steps``, not at 0."""
    _write(tmp_path)
    conv = pd.read_csv(tmp_path / "convergence.csv")
    conv["continued_from"] = float("nan")
    shorter = (conv["run"] == "talkers/faceformer_none_seed1")   # 500 steps, continued to its seed's 1000
    conv.loc[shorter, ["continued_from", "steps"]] = [500, 1000]
    conv.to_csv(tmp_path / "convergence.csv", index=False)
    own = training_steps(tmp_path, "table2_loss_effects", own_stop=True)["FaceFormer"]
    assert own == {str(s): (a, b) for s, (a, b, _) in _SEEDS.items()}
    assert training_steps(tmp_path, "table2_loss_effects")["FaceFormer"]["1"] == (1000, 1000)


def test_a_seed_with_two_runs_in_one_arm_has_no_training_steps(tmp_path):
    """An arm with two training runs at one seed (e.g. a second loss weight) cannot be paired: that seed is left
    out of training_steps, the other seeds kept."""
    _write(tmp_path)
    df = pd.read_csv(tmp_path / "config1_results.csv")
    extra = df[(df["run"] == "faceformer_ours_seed2")].assign(run="faceformer_ours_w2_seed2", loss_weight=2.0)
    pd.concat([df, extra]).to_csv(tmp_path / "config1_results.csv", index=False)
    conv = pd.read_csv(tmp_path / "convergence.csv")
    conv = pd.concat([conv, conv[conv["run"] == "talkers/faceformer_ours_seed2"].assign(
        run="talkers/faceformer_ours_w2_seed2", steps=4000)])
    conv.to_csv(tmp_path / "convergence.csv", index=False)
    steps = training_steps(tmp_path, "table2_loss_effects")["FaceFormer"]
    assert steps == {str(s): (a, b) for s, (a, b, _) in _SEEDS.items() if s != 2}


def test_a_change_of_exactly_zero_is_not_counted_as_better(tmp_path):
    """length_sensitivity: a seed pair of unequal lengths whose change is exactly 0 is not one whose longer arm is
    better (documented rule); it still counts as a pair and as unequal."""
    _write(tmp_path, per_seed_table=True)
    ps = pd.read_csv(tmp_path / "table2_loss_effects_per_seed.csv")
    ps.loc[(ps["seed"] == 1) & (ps["metric"] == "LVE (1e-5 m²)"), "change"] = 0.0   # was -1: better, 500→1000
    ps.to_csv(tmp_path / "table2_loss_effects_per_seed.csv", index=False)
    lve = length_sensitivity(tmp_path, ["table2_loss_effects"]).set_index("metric").loc["LVE (1e-5 m²)"]
    assert (lve["pairs"], lve["unequal"], lve["longer_better"]) == (4, 3, 1)
