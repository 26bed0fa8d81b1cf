"""Table S8 measurement: iteration cost per setting (in process and isolated), the table layout, bad input."""
import math

import pandas as pd
import pytest

from p3d.analysis.training_cost import (PAPER_TABLE_S8, SETTINGS, cost_settings, iteration_cost, table_s8,
                                       table_s8_display, table_s8_note)
from p3d.errors import InputError


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: one torch thread per test


def test_three_settings_in_process(voca_short, smoke_critic_ckpt):
    res = iteration_cost("faceformer", "smoke", voca_short, smoke_critic_ckpt, steps=2, warmup=1, threads=1,
                         isolate=False)
    df = pd.DataFrame(res)
    assert list(df["setting"]) == list(SETTINGS)
    assert list(df["loss"]) == ["none", "ours", "ours"]
    assert df["speech_cache"].tolist() == [None, True, False]
    assert (df["time_s"] > 0).all() and (df["time_s_min"] <= df["time_s"]).all()
    assert df.loc[0, "ratio"] == 1.0
    assert df["ratio"].tolist()[1:] == pytest.approx((df["time_s"][1:] / df["time_s"][0]).tolist())
    assert (df["peak_mb"] > 0).all() and (df["step_mb"] >= 0).all()
    assert (df["steps"] == 2).all() and (df["n_vertices"] == 30).all() and (df["threads"] == 1).all()
    # the same clips in every setting (the trainer's order; no clip is too short for the critic here)
    assert df["mean_frames"].nunique() == 1


def test_isolated_subprocess_and_cache_flag(voca_short, smoke_critic_ckpt):
    res = iteration_cost("selftalk", "smoke", voca_short, smoke_critic_ckpt, settings=["nocache"], steps=1, warmup=0,
                         threads=1)
    assert res["setting"] == ["nocache"] and math.isnan(res["ratio"][0])  # no baseline row measured
    assert res["mem_method"][0].startswith("RSS high-water mark")
    assert res["peak_mb"][0] > 50 and res["threads"] == [1]  # a whole Python process with torch
    no_cache = iteration_cost("faceformer", "smoke", voca_short, smoke_critic_ckpt, cache=False, steps=1, warmup=0,
                              isolate=False)
    assert no_cache["setting"] == ["none", "nocache"]
    only = iteration_cost("faceformer", "smoke", voca_short, steps=1, warmup=0, isolate=False)
    assert only["setting"] == ["none"]


def test_table_s8_keeps_the_paper_apart():
    rows = {"model": ["faceformer"] * 3, "setting": list(SETTINGS), "time_s": [0.2, 0.22, 0.5],
            "peak_mb": [500.0, 520.0, 530.0], "step_mb": [20.0, 30.0, 40.0], "device": ["cpu (x86_64)"] * 3,
            "threads": [1, 1, 1]}
    other = pd.DataFrame({**rows, "model": ["selftalk"] * 3})
    table = table_s8([rows, other])
    assert table["Method"].tolist()[:3] == ["FaceFormer", "+ Ours rep. (cached)", "+ Ours rep. (no cache)"]
    assert table["x without loss"].tolist()[:3] == pytest.approx([1.0, 1.1, 2.5])
    ff = table[table["model"] == "faceformer"]
    # the paper's numbers only in the paper's columns, on the base row and the no-cache row
    assert ff["paper A6000: time (s/iter)"].iloc[0] == PAPER_TABLE_S8["faceformer"]["base"][0]
    assert math.isnan(ff["paper A6000: time (s/iter)"].iloc[1])
    assert ff["paper A6000: mem (MB)"].iloc[2] == PAPER_TABLE_S8["faceformer"]["ours"][1]
    assert ff["paper A6000: x without loss"].iloc[2] == pytest.approx(0.537 / 0.447)
    assert 0.447 not in ff["time (s/iter)"].tolist()
    assert ff["device"].iloc[0] == "cpu (x86_64), 1 thread(s)"
    # ours is bytes / 2**20 (MiB, 4.9 % more than MB): labelled so; the paper's column keeps the paper's MB
    assert ff["peak mem (MiB)"].tolist() == [500.0, 520.0, 530.0] and ff["iter mem (MiB)"].iloc[0] == 20.0
    assert not [c for c in table.columns if "MB" in c and not c.startswith("paper")]
    assert "quoted, not measured" in table.attrs["note"]
    # a model's settings from two runs, or under other devices: refused (a CUDA time was divided by a CPU one)
    with pytest.raises(InputError, match="measured more than once"):
        table_s8([rows, rows])
    gpu = {**rows, "device": ["cpu (x86_64)", "cuda (H100)", "cpu (x86_64)"]}
    with pytest.raises(InputError, match="different device"):
        table_s8(gpu)


def test_cost_settings_per_preset():
    """Notebook 06's Table S8 measurement: few iterations at smoke, more rounds where the numbers are reported;
    a value given wins, 0 warm-up iterations included."""
    assert cost_settings("smoke") == (2, 1, 1)
    assert cost_settings("cpu") == (20, 3, 3)
    assert cost_settings("full") == cost_settings("paper") == (20, 3, 5)
    assert cost_settings("cpu", 5, 0, 2) == (5, 0, 2)
    assert cost_settings("smoke", None, 4, None) == (2, 4, 1)


def test_table_s8_display_and_note():
    rows = {"model": ["faceformer"] * 3, "setting": list(SETTINGS), "time_s": [0.21234, 0.22, 0.5],
            "peak_mb": [500.4, 520.0, 530.0], "step_mb": [20.0, 30.0, 40.0], "device": ["cpu (x86_64)"] * 3,
            "threads": [1, 1, 1], "mean_frames": [90.0, 90.0, 90.0], "mem_method": ["VmHWM"] * 3,
            "setup_s": [1.2, 3.0, 2.0]}
    other = {**rows, "model": ["selftalk"] * 3, "mean_frames": [100.0] * 3, "mem_method": ["ru_maxrss"] * 3}
    table = table_s8([rows, other])
    shown = table_s8_display(table)
    assert "model" not in shown and "setting" not in shown and shown["Method"].iloc[0] == "FaceFormer"
    assert shown["time (s/iter)"].iloc[0] == 0.212 and shown["peak mem (MiB)"].iloc[0] == 500.0
    assert shown["paper A6000: mem (MB)"].iloc[0] == PAPER_TABLE_S8["faceformer"]["base"][1]  # the paper's unit
    assert shown["x without loss"].iloc[1] == round(0.22 / 0.21234, 2)
    note = table_s8_note(table, [rows, other], steps=20, warmup=3, rounds=5, threads=1, n_vertices=30,
                         critic="smoke/critic/final")
    assert note.startswith(table.attrs["note"] + ". Ours: mean of 20 timed iterations after 3 warm-up")
    assert "5 round(s)" in note and "one torch thread" in note and "(95 frames on average, 30 vertices)" in note
    assert "critic `ours` (smoke/critic/final)" in note and "`peak mem`: VmHWM / ru_maxrss;" in note
    assert "FaceFormer none 1 s, FaceFormer cache 3 s" in note and "SelfTalk nocache 2 s." in note


def test_bad_input(voca_short, smoke_critic_ckpt, tmp_path):
    with pytest.raises(InputError, match="critic_ckpt"):
        iteration_cost("faceformer", "smoke", voca_short, tmp_path / "missing.pt")
    with pytest.raises(InputError, match="needs critic_ckpt"):
        iteration_cost("faceformer", "smoke", voca_short, settings=["cache"])
    with pytest.raises(InputError, match="unknown setting"):
        iteration_cost("faceformer", "smoke", voca_short, smoke_critic_ckpt, settings=["fast"])
    with pytest.raises(InputError, match="not found"):
        iteration_cost("faceformer", "smoke", tmp_path / "nothing")
    with pytest.raises(InputError, match="steps"):
        iteration_cost("faceformer", "smoke", voca_short, steps=0)
    with pytest.raises(InputError, match="lack the columns"):
        table_s8({"model": ["faceformer"]})


def test_cached_setting_uses_the_on_disk_speech_cache(voca_short, smoke_critic_ckpt, tmp_path):
    cache = tmp_path / "speech_cache"
    first = iteration_cost("faceformer", "smoke", voca_short, smoke_critic_ckpt, settings=["cache"], steps=1, warmup=0,
                           isolate=False, speech_cache_dir=cache)
    files = sorted(p for p in cache.rglob("*") if p.is_file())
    assert files, "the cached setting should fill the on-disk cache"
    stamps = [p.stat().st_mtime_ns for p in files]
    again = iteration_cost("faceformer", "smoke", voca_short, smoke_critic_ckpt, settings=["cache"], steps=1, warmup=0,
                           isolate=False, speech_cache_dir=cache)
    assert [p.stat().st_mtime_ns for p in files] == stamps      # read, not rewritten
    assert again["mean_frames"] == first["mean_frames"]


def test_full_preset_measures_its_cpu_models(voca_short, monkeypatch):
    """Notebook 06 at preset full: the request names the model preset (a subprocess refused "full")."""
    import p3d.analysis.training_cost as tc

    seen = []
    monkeypatch.setattr(tc, "_run_isolated", lambda req: seen.append(req.preset) or {"setting": req.setting, "time_s": 1.0})
    res = iteration_cost("faceformer", "full", voca_short, steps=1, warmup=0)
    assert seen == ["cpu"] and res["setting"] == ["none"]


def test_models_cost_measures_each_model_with_its_runs_weight(monkeypatch):
    """Notebook 06's Table S8: iteration_cost of every model in turn, W from its critic-ours run of the seed."""
    from p3d.analysis import training_cost as tc

    calls = []
    monkeypatch.setattr(tc, "iteration_cost", lambda *a, **k: calls.append((a, k)) or {"model": [a[0]]})
    results = [{"experiment": {"model": m, "critic": c, "seed": sd}, "loss_weight": w}
               for m, c, sd, w in [("faceformer", "none", 1, None), ("faceformer", "ours", 1, 0.5),
                                   ("faceformer", "ours", 0, 0.25), ("selftalk", "ours", 1, 2e-3)]]
    rows = tc.models_cost(["selftalk", "faceformer"], "smoke", "voca", "critic.pt", results, seed=1, steps=2,
                          threads=1)
    assert rows == [{"model": ["selftalk"]}, {"model": ["faceformer"]}]
    assert calls == [(("selftalk", "smoke", "voca", "critic.pt"), {"seed": 1, "loss_weight": 2e-3, "steps": 2,
                                                                   "threads": 1}),
                     (("faceformer", "smoke", "voca", "critic.pt"), {"seed": 1, "loss_weight": 0.5, "steps": 2,
                                                                     "threads": 1})]
    with pytest.raises(InputError, match="no codetalker run with critic ours and seed 1"):
        tc.models_cost(["codetalker"], "smoke", "voca", "critic.pt", results, seed=1)


def test_rounds_alternate_the_order_and_give_the_ratio_an_interval(voca_short, smoke_critic_ckpt, monkeypatch):
    """Each round measures every setting, the order reversed every other round; the ratio is the geometric mean of
    the rounds' own ratios, with a 95 % t-interval; one round keeps the old single ratio and no interval."""
    import numpy as np
    from scipy import stats

    from p3d.analysis import training_cost as tc

    order, times = [], {"none": [1.0, 1.1, 0.9], "cache": [1.2, 1.43, 1.0], "nocache": [3.0, 3.3, 2.7]}

    def fake(req):
        order.append(req.setting)
        t = times[req.setting][sum(1 for s in order if s == req.setting) - 1]
        return {"model": req.model_name, "setting": req.setting, "time_s": t, "time_s_median": t, "time_s_std": 0.0,
                "time_s_min": t, "ratio": float("nan"), "peak_mb": 100.0 + t, "step_mb": t, "setup_s": 1.0,
                "device": "cpu (x86_64)", "threads": 1}

    monkeypatch.setattr(tc, "measure", fake)
    res = pd.DataFrame(iteration_cost("faceformer", "smoke", voca_short, smoke_critic_ckpt, steps=1, warmup=0,
                                      isolate=False, rounds=3)).set_index("setting")
    assert order == ["none", "cache", "nocache", "nocache", "cache", "none", "none", "cache", "nocache"]
    logs = np.log(np.array(times["cache"]) / np.array(times["none"]))
    half = stats.t.ppf(0.975, 2) * logs.std(ddof=1) / np.sqrt(3)
    assert res.loc["cache", "ratio"] == pytest.approx(np.exp(logs.mean()))
    assert res.loc["cache", ["ratio_low", "ratio_high"]].tolist() == pytest.approx(
        [np.exp(logs.mean() - half), np.exp(logs.mean() + half)])
    assert res.loc["nocache", "ratio_low"] == pytest.approx(3.0) == res.loc["nocache", "ratio_high"]  # same ratio
    assert res.loc["none", "ratio"] == 1.0 and res.loc["cache", "time_s"] == pytest.approx(np.mean(times["cache"]))
    assert res.loc["cache", "peak_mb"] == pytest.approx(101.43) and (res["rounds"] == 3).all()
    table = table_s8(res.reset_index())
    assert table["x without loss: 95 % CI over rounds"].tolist() == [
        "–", f"[{res.loc['cache', 'ratio_low']:.2f}, {res.loc['cache', 'ratio_high']:.2f}]", "[3.00, 3.00]"]
    order.clear()
    one = pd.DataFrame(iteration_cost("faceformer", "smoke", voca_short, smoke_critic_ckpt, steps=1, warmup=0,
                                      isolate=False))
    assert (one["rounds"] == 1).all() and one["ratio_low"].isna().all()
    assert "x without loss: 95 % CI over rounds" not in table_s8(one).columns
    with pytest.raises(InputError, match="rounds"):
        iteration_cost("faceformer", "smoke", voca_short, rounds=0)


def test_two_real_rounds_in_process(voca_short, smoke_critic_ckpt):
    res = pd.DataFrame(iteration_cost("codetalker", "smoke", voca_short, smoke_critic_ckpt, settings=["none", "cache"],
                                      steps=1, warmup=0, isolate=False, rounds=2)).set_index("setting")
    assert (res["rounds"] == 2).all() and res.loc["none", "ratio"] == pytest.approx(1.0)
    assert res.loc["cache", "ratio_low"] <= res.loc["cache", "ratio"] <= res.loc["cache", "ratio_high"]
    assert res.loc["cache", "time_s_std"] >= 0 and res.loc["cache", "time_s"] > 0


@pytest.mark.parametrize("option, bad", [("steps", 2.5), ("steps", True), ("steps", "3"), ("warmup", 0.5),
                                         ("rounds", 2.5), ("rounds", "2"), ("threads", 1.5), ("threads", True),
                                         ("seed", -1), ("seed", 1.5)])
def test_counts_and_seed_are_whole_numbers(tmp_path, option, bad):
    """2.5 steps ran 2 and True ran 1 (and was reported as such), '3' or 2.5 rounds were a TypeError after the
    checks, and a negative or fractional seed went on to the trainer (the model's seed, the clip order)."""
    with pytest.raises(InputError, match=f"{option}: expected an integer >= "):
        iteration_cost("faceformer", "smoke", tmp_path, **{option: bad})


def test_bad_input_in_the_measuring_process_is_an_input_error(voca_short):
    """Bad input that only the measuring subprocess finds (an unknown model, an unknown device) was a RuntimeError
    carrying the child's 15-line traceback (isolate=True, the default); it is the same one-line InputError as in
    process."""
    for kw in ({"model_name": "nope"}, {"model_name": "faceformer", "device": "tpu"}):
        with pytest.raises(InputError, match="--model|--device") as err:
            iteration_cost(preset="smoke", train_dirs=voca_short, steps=1, warmup=0, threads=1, **kw)
        assert "\n" not in str(err.value)


def test_measure_times_each_step_after_the_warm_up_and_reports_mib(voca_short, monkeypatch):
    """One setting measured in process with a scripted clock and resident set: ``warmup`` untimed iterations then
    ``steps`` timed ones (the trainer's steps 0, 1, ... in order), ``time_s`` their mean, ``time_s_median``,
    ``time_s_std`` (ddof 1) and ``time_s_min`` of the same timings, and memory in MiB (2**20 bytes): ``peak_mb``
    the high-water mark, ``step_mb`` what the iterations add to the memory held before the first one."""
    import types

    import numpy as np

    import p3d.train.trainer as trainer
    from p3d.analysis import training_cost as tc

    steps_seen = []
    real_indices = trainer.batch_indices

    def indices(n, batch, seed, step):
        steps_seen.append(step)
        return real_indices(n, batch, seed, step)

    durations = iter([1.0, 2.0, 6.0])
    clock = {"now": 0.0, "timing": False}

    def perf_counter():  # t0 and the set-up end read 0; each timed step lasts the next of `durations`
        if clock["timing"]:
            clock["now"] += next(durations)
        clock["timing"] = len(steps_seen) >= 2 and not clock["timing"]
        return clock["now"]

    monkeypatch.setattr(trainer, "batch_indices", indices)
    monkeypatch.setattr(tc, "time", types.SimpleNamespace(perf_counter=perf_counter))
    monkeypatch.setattr(tc, "_reset_rss_peak", lambda: (200 * 2.0 ** 20, "scripted"))
    monkeypatch.setattr(tc, "_rss_peak", lambda: 300 * 2.0 ** 20)
    row = tc.measure(tc.CostRequest("faceformer", "smoke", (str(voca_short),), "none", steps=3, warmup=2, threads=1))
    assert steps_seen == [0, 1, 2, 3, 4]
    assert row["time_s"] == pytest.approx(3.0) and row["time_s_median"] == pytest.approx(2.0)
    assert row["time_s_min"] == pytest.approx(1.0)
    assert row["time_s_std"] == pytest.approx(np.std([1.0, 2.0, 6.0], ddof=1))
    assert (row["peak_mb"], row["step_mb"], row["mem_method"]) == (pytest.approx(300.0), pytest.approx(100.0),
                                                                   "scripted")


def test_rss_peak_is_the_kernels_high_water_mark_in_bytes():
    """VmHWM is in kB (KiB) in /proc/self/status; _rss_peak gives bytes."""
    from pathlib import Path

    from p3d.analysis.training_cost import _rss_peak

    status = Path("/proc/self/status")
    if not status.exists():
        pytest.skip("no /proc (not Linux)")

    def hwm_kib():
        line = next(x for x in status.read_text().splitlines() if x.startswith("VmHWM:"))
        assert line.split()[2] == "kB"
        return int(line.split()[1])

    before = hwm_kib()
    got = _rss_peak()
    assert before * 1024 <= got <= hwm_kib() * 1024


def test_rounds_combine_the_spread_and_memory_as_documented(voca_short, monkeypatch):
    """With several rounds: ``time_s_std`` is the (ddof 1) standard deviation of the rounds' times, ``time_s_min``
    the smallest round minimum, and ``peak_mb`` / ``step_mb`` the largest of the rounds (iteration_cost's
    docstring)."""
    import numpy as np

    from p3d.analysis import training_cost as tc

    times = iter([1.0, 1.6, 0.7])
    step = iter([30.0, 10.0, 20.0])

    def fake(req):
        t = next(times)
        return {"model": req.model_name, "setting": req.setting, "time_s": t, "time_s_median": t,
                "time_s_std": 0.0, "time_s_min": t - 0.1, "ratio": float("nan"), "peak_mb": 100.0, "step_mb": next(step),
                "setup_s": 1.0, "device": "cpu (x86_64)", "threads": 1}

    monkeypatch.setattr(tc, "measure", fake)
    res = iteration_cost("faceformer", "smoke", voca_short, steps=1, warmup=0, isolate=False, rounds=3)
    assert res["time_s_std"] == [pytest.approx(np.std([1.0, 1.6, 0.7], ddof=1))]
    assert res["time_s_min"] == [pytest.approx(0.6)] and res["step_mb"] == [30.0]


def test_table_s8_refuses_settings_timed_over_different_steps():
    """A model's settings must share the device, preset, threads *and* steps (table_s8's docstring)."""
    rows = {"model": ["faceformer"] * 2, "setting": ["none", "cache"], "time_s": [0.2, 0.22], "peak_mb": [500.0, 520.0],
            "step_mb": [20.0, 25.0], "device": ["cpu (x86_64)"] * 2, "preset": ["smoke"] * 2, "threads": [1, 1],
            "steps": [20, 5]}
    with pytest.raises(InputError, match="steps"):
        table_s8(rows)
