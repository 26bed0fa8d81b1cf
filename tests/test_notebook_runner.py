"""make figures: run list, parameter sets, code fingerprints, and incremental re-runs."""
import json
from pathlib import Path

import nbformat
import pytest

from p3d import notebook_runner
from p3d.notebook_runner import PARAMETER_SETS, executions, fingerprint, module_closure, notebooks


def test_notebooks_in_order_and_stage2_runs_every_critic():
    names = [nb.name for nb in notebooks()]
    assert names == sorted(names) and names[0].startswith("00_")
    runs = executions(Path("notebooks/03_stage2.ipynb"), "cpu")
    assert [p["critic"] for p, _ in runs] == ["ours", "syncnet3d", "no2d"]
    assert all(p["preset"] == "cpu" for p, _ in runs)
    assert runs[0][1] == "03_stage2-critic=ours.ipynb"
    assert executions(Path("notebooks/01_data.ipynb"), "smoke") == [({"preset": "smoke"}, "01_data.ipynb")]
    assert set(PARAMETER_SETS) <= {nb.stem for nb in notebooks()}


@pytest.fixture()
def project(tmp_path, monkeypatch):
    """A tiny project: notebooks/00_a uses p3d.alpha, which imports p3d.beta inside a function and names
    p3d.delta in an importlib string; p3d.gamma is unused."""
    pkg = tmp_path / "p3d"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "alpha.py").write_text("def f():\n    from p3d import beta\n    return 'p3d.delta:thing'\n")
    (pkg / "beta.py").write_text("X = 1\n")
    (pkg / "delta.py").write_text("thing = 2\n")
    (pkg / "gamma.py").write_text("Y = 1\n")
    (tmp_path / "pyproject.toml").write_text("[project]\nname='x'\n")
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("preset = 'smoke'", metadata={"tags": ["parameters"]}),
                                         nbformat.v4.new_code_cell("from p3d.alpha import f\nprint(f())")])
    nbformat.write(nb, nbdir / "00_a.ipynb")
    monkeypatch.setenv("P3D_ROOT", str(tmp_path))
    # the runner's grid (cpu and full train their whole grid first) is not under test here: nothing to train
    monkeypatch.setattr("p3d.experiments.preset_grid", lambda preset, dirs, **kw: None)
    return tmp_path


def test_module_closure_follows_lazy_and_string_imports(project):
    files = {p.name for p in module_closure(["from p3d.alpha import f"], project)}
    assert files == {"__init__.py", "alpha.py", "beta.py", "delta.py"}
    magic = {p.name for p in module_closure(["%matplotlib inline\nfrom p3d.alpha import (\n    f,\n)"], project)}
    assert magic == files


def test_module_closure_does_not_follow_the_command_registry(project):
    """p3d.cli names every command module as a string; a module importing it for help_text is not a use of them."""
    (project / "p3d" / "cli.py").write_text("COMMAND_MODULES = ('p3d.gamma',)\ndef help_text(d):\n    return d\n")
    (project / "p3d" / "beta.py").write_text("from p3d.cli import help_text\nX = 1\n")
    files = {p.name for p in module_closure(["from p3d.alpha import f"], project)}
    assert files == {"__init__.py", "alpha.py", "beta.py", "cli.py", "delta.py"}   # not gamma.py
    assert "gamma.py" in {p.name for p in module_closure(["import p3d.gamma"], project)}


def test_fingerprint_tracks_used_code_params_and_notebook(project):
    nb = project / "notebooks" / "00_a.ipynb"
    base = fingerprint(nb, {"preset": "cpu"}, project)
    (project / "p3d" / "gamma.py").write_text("Y = 2\n")
    assert fingerprint(nb, {"preset": "cpu"}, project) == base
    assert fingerprint(nb, {"preset": "smoke"}, project) != base
    (project / "p3d" / "beta.py").write_text("X = 2\n")
    changed = fingerprint(nb, {"preset": "cpu"}, project)
    assert changed != base
    nb.write_text(nb.read_text().replace("print(f())", "print(f(), 1)"))
    assert fingerprint(nb, {"preset": "cpu"}, project) != changed


def test_make_figures_twice_reruns_nothing(project, monkeypatch):
    calls = []

    def fake_execute(src, dst, parameters, **kw):
        calls.append((Path(src).name, parameters))
        Path(dst).write_text(Path(src).read_text())

    monkeypatch.setattr("papermill.execute_notebook", fake_execute)
    first = notebook_runner.run_all("cpu")
    assert len(calls) == 1 and not first["notebooks"][0]["skipped"]
    second = notebook_runner.run_all("cpu")
    assert len(calls) == 1 and second["notebooks"][0]["skipped"]
    assert second["notebooks"][0]["fingerprint"] == first["notebooks"][0]["fingerprint"]
    (project / "p3d" / "beta.py").write_text("X = 3\n")
    notebook_runner.run_all("cpu")
    assert len(calls) == 2
    notebook_runner.run_all("cpu", force=True)
    assert len(calls) == 3
    (project / "results" / "cpu" / "notebooks" / "00_a.ipynb").unlink()
    notebook_runner.run_all("cpu")
    assert len(calls) == 4
    prov = json.loads((project / "results" / "cpu" / "provenance.json").read_text())
    assert prov["preset"] == "cpu" and "data" in prov and prov["notebooks"][0]["executed"] == "00_a.ipynb"


def test_cpu_quick_look_keeps_its_record_and_copies_apart_from_the_committed_ones(project, monkeypatch):
    """The committed provenance and executed notebooks (results/, the full preset's) survive a cpu run, which
    writes under results/cpu/ as its figures and tables do; each preset skips its own unchanged executions."""
    calls = []

    def fake_execute(src, dst, parameters, **kw):
        calls.append(parameters["preset"])
        Path(dst).write_text(parameters["preset"])

    class Grid:  # p3d.experiments.preset_grid's result: the full preset trains its grid before the notebooks
        tasks = [1, 2, 3]

    grids = []
    monkeypatch.setattr("p3d.experiments.preset_grid",
                        lambda preset, dirs, **kw: grids.append((preset, kw["workers"])) or (Grid() if preset == "full" else None))
    monkeypatch.setattr("papermill.execute_notebook", fake_execute)
    notebook_runner.run_all("full")
    prov = json.loads((project / "results" / "provenance.json").read_text())
    assert grids == [("full", 2)] and prov["grid"]["tasks"] == 3 and prov["grid"]["workers"] == 2
    assert "the preset's grid, 2 processes" in notebook_runner.timing_markdown(prov)
    committed = (project / "results" / "provenance.json").read_bytes()
    notebook_runner.run_all("cpu")
    assert (project / "results" / "provenance.json").read_bytes() == committed
    assert (project / "results" / "notebooks" / "00_a.ipynb").read_text() == "full"
    assert (project / "results" / "cpu" / "notebooks" / "00_a.ipynb").read_text() == "cpu"
    assert json.loads((project / "results" / "cpu" / "provenance.json").read_text())["preset"] == "cpu"
    notebook_runner.run_all("full")
    notebook_runner.run_all("cpu")
    assert calls == ["full", "cpu"]
    assert [g[0] for g in grids] == ["full", "cpu", "full", "cpu"]  # finished grids are reused (run_grid), cheaply
    before = json.loads((project / "results" / "provenance.json").read_text())["grid"]
    notebook_runner.run_all("full", only=["00"])
    assert len(grids) == 4  # a partial run trains no grid
    kept = json.loads((project / "results" / "provenance.json").read_text())
    assert kept["grid"] == {**before, "skipped": True}  # and keeps the record of the grid that trained the outputs
    assert "not run now" in notebook_runner.timing_markdown(kept)
    notebook_runner.run_all("full")
    assert "skipped" not in json.loads((project / "results" / "provenance.json").read_text())["grid"]


def test_extra_parameter_sets_only_with_extra():
    nb = Path("notebooks/06_lipsync_tables.ipynb")
    assert executions(nb, "cpu") == [({"preset": "cpu"}, "06_lipsync_tables.ipynb")]
    both = executions(nb, "cpu", extra=True)
    assert both[1] == ({"preset": "cpu", "per_model_kappa": True}, "06_lipsync_tables-per_model_kappa=True.ipynb")
    assert set(notebook_runner.EXTRA_PARAMETER_SETS) <= {nb.stem for nb in notebooks()}


def test_claims_notebook_fingerprint_tracks_the_tables_it_reads(project, monkeypatch):
    nb = project / "notebooks" / "10_claims.ipynb"
    nb.write_text((project / "notebooks" / "00_a.ipynb").read_text())
    tables = project / "results" / "cpu" / "tables"  # the cpu preset's tables (p3d.paths.output_dirs)
    tables.mkdir(parents=True)
    (tables / "t.csv").write_text("a\n1\n")
    base = fingerprint(nb, {"preset": "cpu"}, project)
    (tables / "notes.md").write_text("not an input")
    assert fingerprint(nb, {"preset": "cpu"}, project) == base
    (tables / "t.csv").write_text("a\n2\n")
    assert fingerprint(nb, {"preset": "cpu"}, project) != base
    # the same notebook under another name does not read tables
    other = project / "notebooks" / "00_a.ipynb"
    before = fingerprint(other, {"preset": "cpu"}, project)
    (tables / "t.csv").write_text("a\n3\n")
    assert fingerprint(other, {"preset": "cpu"}, project) == before
    # another preset's tables are not this preset's input
    full = fingerprint(nb, {"preset": "full"}, project)
    (tables / "t.csv").write_text("a\n4\n")
    assert fingerprint(nb, {"preset": "full"}, project) == full
    assert fingerprint(nb, {"preset": "cpu"}, project) != base


def test_timing_markdown_sums_only_what_ran():
    prov = {"notebooks": [{"executed": "a.ipynb", "wall_s": 120.0, "skipped": False, "git_commit": "a" * 40},
                          {"executed": "b.ipynb", "wall_s": 600.0, "skipped": True,
                           "git_commit": "b" * 40 + "-dirty"}]}
    text = notebook_runner.timing_markdown(prov, 130.0)
    assert "| a.ipynb | 2.0 min (120 s) | ran | aaaaaaa |" in text
    assert "skipped" in text.splitlines()[3] and text.splitlines()[3].endswith("| bbbbbbb-dirty |")
    assert "| executions that ran | 2.0 min | | |" in text
    assert "2.2 min" in text
    # a grid resumed over sittings at several commits names them in order
    prov["grid"] = {"wall_s": 60.0, "workers": 2, "git_commit": "c" * 40, "sittings": 3, "sittings_total_s": 600.0,
                    "sittings_commits": ["d" * 40, "c" * 40]}
    text = notebook_runner.timing_markdown(prov)
    assert "| the preset's grid, 2 processes (before the notebooks), its last sitting | 1.0 min (60 s) | ran | cccccc" in text
    assert "| 10.0 min (600 s) | sum | ddddddd, ccccccc |" in text
    del prov["grid"]["sittings_commits"]                     # a record written before the commits were kept
    assert "| sum | ? |" in notebook_runner.timing_markdown(prov)


def test_timing_markdown_escapes_a_bar_in_an_execution_name():
    """An executed copy is named ``<stem>-<key>=<value>.ipynb`` (:func:`notebook_runner.executions`), and a "|" in
    a parameter value (or a notebook name) was written as is: that row had 5 cells under a 4-column header, so
    GitHub drew the README's timing table broken. The name goes through :func:`p3d.tables.markdown_cell`."""
    import re

    nb = Path("notebooks/03_stage2.ipynb")
    name = notebook_runner.executions(nb, "cpu")[0][1].replace(".ipynb", "-design=rank|ab.ipynb")
    prov = {"notebooks": [{"executed": name, "wall_s": 60.0, "git_commit": "a" * 40}]}
    text = notebook_runner.timing_markdown(prov)
    assert "| 03_stage2-critic=ours-design=rank\\|ab.ipynb | 1.0 min (60 s) | ran | aaaaaaa |" in text
    assert {len(re.split(r"(?<!\\)\|", line)) - 2 for line in text.splitlines()} == {4}


def test_read_provenance_only_of_the_preset(tmp_path):
    """The record notebook 10 shows: the file's when it is of the preset asked for; empty when missing, another
    preset's, or not JSON (a record being replaced is never half-written: p3d.atomic)."""
    from p3d.notebook_runner import read_provenance

    path = tmp_path / "provenance.json"
    assert read_provenance(path, "smoke") == {}
    record = {"preset": "smoke", "notebooks": [{"notebook": "00_quickstart.ipynb", "seconds": 1.0}]}
    path.write_text(json.dumps(record))
    assert read_provenance(path, "smoke") == record and read_provenance(str(path), "smoke") == record
    assert read_provenance(path, "cpu") == {}
    path.write_text("{not json")
    assert read_provenance(path, "smoke") == {}


def test_records_of_executions_not_run_now_are_marked_skipped(project, monkeypatch):
    monkeypatch.setattr("papermill.execute_notebook",
                        lambda src, dst, parameters, **kw: Path(dst).write_text(Path(src).read_text()))
    monkeypatch.setattr(notebook_runner, "EXTRA_PARAMETER_SETS", {"00_a": [{"x": 1}]})
    first = notebook_runner.run_all("cpu", extra=True)
    assert [r["skipped"] for r in first["notebooks"]] == [False, False]
    second = notebook_runner.run_all("cpu", force=True)          # the extra execution is not part of this run
    by_name = {r["executed"]: r for r in second["notebooks"]}
    assert by_name["00_a.ipynb"]["skipped"] is False
    assert by_name["00_a-x=1.ipynb"]["skipped"] is True


def test_corpus_hashes_survive_a_run_without_the_corpora(project, monkeypatch):
    """A corpus on disk is hashed afresh; one absent now (a fresh machine) keeps the hash recorded before."""
    monkeypatch.setattr("papermill.execute_notebook",
                        lambda src, dst, parameters, **kw: Path(dst).write_text(Path(src).read_text()))
    for name, text in (("synth-voca", "a"), ("synth-lrs3", "b")):
        (project / "data" / "cpu" / name).mkdir(parents=True)
        (project / "data" / "cpu" / name / "meta.json").write_text(text)
    first = notebook_runner.run_all("cpu")["data"]
    assert set(first) == {"synth-voca", "synth-lrs3"}
    (project / "data" / "cpu" / "synth-lrs3" / "meta.json").unlink()
    (project / "data" / "cpu" / "synth-voca" / "meta.json").write_text("changed")
    second = notebook_runner.run_all("cpu", force=True)["data"]
    assert second["synth-lrs3"] == first["synth-lrs3"] and second["synth-voca"] != first["synth-voca"]


def test_output_folders_per_preset(project):
    """full and paper write the committed figures/ and results/; smoke and cpu under results/<preset>/."""
    from p3d.paths import output_dirs, results_dir

    for preset in ("full", "paper"):
        dirs = output_dirs(preset)
        assert (dirs.figures, dirs.tables, dirs.results) == (project / "figures", project / "results" / "tables",
                                                             project / "results")
        assert results_dir(preset) == project / "results"
    for preset in ("smoke", "cpu"):
        dirs = output_dirs(preset)
        own = project / "results" / preset
        assert (dirs.figures, dirs.tables, dirs.results) == (own / "figures", own / "tables", own)
        assert results_dir(preset, project) == own


def test_workers_must_be_positive(capsys):
    with pytest.raises(SystemExit) as e:
        notebook_runner.main(["--preset", "full", "--workers", "0"])
    assert e.value.code == 2 and "--workers: expected a positive process count" in capsys.readouterr().err


def test_only_naming_no_notebook_is_refused(capsys, monkeypatch):
    """A mistyped --only ran nothing, rewrote the provenance record and exited 0."""
    monkeypatch.setattr(notebook_runner, "run_all", lambda *a, **k: pytest.fail("ran with an --only matching nothing"))
    with pytest.raises(SystemExit) as e:
        notebook_runner.main(["--only", "05_talking_heads", "99_nosuch"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--only 99_nosuch: no notebook" in err and "05_talking_heads" not in err.split("(")[0]


def test_a_refused_run_of_the_grid_is_one_line_and_exit_2(capsys, monkeypatch):
    """make figures: a run folder the grid refuses (other settings, regenerated data, a changed recipe) was a
    traceback; it is one line and exit 2."""
    def refuse(*a, **k):
        raise notebook_runner.InputError("--out runs/x: holds a run with other settings: seed: 0 -> 1\n(use another)")

    monkeypatch.setattr(notebook_runner, "run_all", refuse)
    assert notebook_runner.main(["--preset", "smoke"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: --out runs/x: holds a run with other settings" in err


def test_make_figures_passes_the_worker_count():
    """``make figures WORKERS=N`` trains the grid in N processes (default 2); ``make -n`` prints the command."""
    import shutil
    import subprocess
    from pathlib import Path

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    root = Path(__file__).resolve().parents[1]

    def command(*args: str) -> str:
        out = subprocess.run(["make", "-n", "-s", "figures", *args], cwd=root, capture_output=True, text=True,
                             check=True).stdout
        return next(line for line in out.splitlines() if "p3d.notebook_runner" in line)

    assert "--preset full --workers 6" in command("PRESET=full", "WORKERS=6")
    assert "--preset cpu --workers 2" in command()


def test_a_grid_finished_over_several_sittings_reports_their_sum(project, monkeypatch):
    """Each invocation's grid time is kept beside the runs (runs/<preset>/grid_sittings.json); a sitting that is
    killed keeps the time it recorded (here: before heartbeats, up to its last finished task), and the provenance and
    timing table show the sum, saying how a stopped sitting was counted."""
    class Grid:
        tasks = [1, 2]

    def grid(preset, dirs, **kw):
        if preset != "full":
            return None                                     # as preset_grid at a preset without a fixed weight
        kw["on_task"]({"task": "a", "seconds": 1.5, "start_s": 0.0, "end_s": 1.5, "process": 7, "status": "done"})
        return Grid()

    monkeypatch.setattr("p3d.experiments.preset_grid", grid)
    monkeypatch.setattr("papermill.execute_notebook", lambda src, dst, **kw: Path(dst).write_text("x"))
    path = project / "runs" / "full" / notebook_runner.SITTINGS_FILE
    killed = notebook_runner.GridSittings(path, "abc")      # a sitting stopped after one task: never finished
    killed.entries[-1]["seconds"] = 100.0
    killed._write()
    notebook_runner.run_all("full")
    prov = json.loads((project / "results" / "provenance.json").read_text())
    entries = json.loads(path.read_text())["sittings"]
    assert [e["git_commit"] for e in entries] == ["abc", prov["git_commit"]]
    assert entries[1]["tasks"] == [{"task": "a", "seconds": 1.5, "status": "done"}]  # each task as it ended
    assert prov["grid"]["sittings"] == 2 and prov["grid"]["sittings_commits"] == ["abc", prov["git_commit"]]
    assert prov["grid"]["sittings_total_s"] == pytest.approx(100.0 + entries[1]["seconds"], abs=0.1)
    table = notebook_runner.timing_markdown(prov)
    assert "its last sitting" in table and "over all its 2 sittings" in table and "| 1.7 min (100 s) | sum |" in table
    assert "counted to its last finished task" in table and prov["grid"]["sittings_heartbeat"] is False
    assert not (project / "runs" / "cpu").exists()          # per preset, beside that preset's runs
    notebook_runner.run_all("cpu")
    assert not (project / "runs" / "cpu" / notebook_runner.SITTINGS_FILE).exists()  # no grid, no sitting
    path.write_text(json.dumps({"sittings": entries[1:]}))  # only sittings with heartbeats
    notebook_runner.run_all("full")
    prov = json.loads((project / "results" / "provenance.json").read_text())
    assert prov["grid"]["sittings"] == 2 and prov["grid"]["sittings_heartbeat"] is True
    assert "counted to its last minute" in notebook_runner.timing_markdown(prov)


def test_a_running_grid_sitting_records_its_time_before_any_task_ends(tmp_path):
    """GridSittings.heartbeat: while the grid runs, the sitting's seconds are written every interval, so a sitting
    killed before its first task ends (a full grid's stage-1 trainings run for an hour) still counts its time; before,
    only a finished task wrote it. The heartbeat ends with its block."""
    import threading

    path = tmp_path / notebook_runner.SITTINGS_FILE
    sittings = notebook_runner.GridSittings(path, "abc")
    written = threading.Event()
    real_write = sittings._write

    def write():
        real_write()
        written.set()

    sittings._write = write
    with sittings.heartbeat(interval_s=0.01):
        assert written.wait(timeout=30)                    # no task has ended: the heartbeat wrote it
        first = json.loads(path.read_text())["sittings"]
        assert len(first) == 1 and first[0]["git_commit"] == "abc" and "tasks" not in first[0]
    assert not any(t.name == "grid-sittings-heartbeat" for t in threading.enumerate())


def test_sittings_task_seconds_sum_a_resumed_task_and_skip_failures(tmp_path):
    path = tmp_path / notebook_runner.SITTINGS_FILE
    first = notebook_runner.GridSittings(path, "abc")
    first.tick({"task": "stage1", "seconds": 20.0, "status": "done"})
    first.tick({"task": "train:x", "seconds": 0.0, "status": "failed: boom"})
    second = notebook_runner.GridSittings(path, "abc")      # resumed: stage1 found finished, train:x done now
    second.tick({"task": "stage1", "seconds": 0.0, "status": "done"})
    second.tick({"task": "train:x", "seconds": 7.5, "status": "done"})
    assert notebook_runner.GridSittings.task_seconds(path) == {"stage1": 20.0, "train:x": 7.5}
    with pytest.raises(notebook_runner.InputError, match="no such sittings file"):
        notebook_runner.GridSittings.task_seconds(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(notebook_runner.InputError, match="not a grid sittings file"):
        notebook_runner.GridSittings.task_seconds(tmp_path / "bad.json")


def test_make_figures_writes_readme_timing_from_the_record_of_this_invocation(project, monkeypatch):
    """README's timing table is the record of the invocation that just ended: its commit, the last notebook's own
    execution. An executing notebook reads the record before its own execution is in it (and, run alone, with the
    previous invocation's commit), so the runner, not the notebook, writes the table. A cpu quick look leaves it."""
    from p3d import claims

    start, end = claims.readme_markers("timing")
    readme = project / "README.md"
    readme.write_text(f"intro\n{start}\nold\n{end}\ntail\n")
    commit = {"now": "a" * 40}
    monkeypatch.setattr("p3d.provenance.git_commit", lambda *a, **k: commit["now"])
    monkeypatch.setattr("papermill.execute_notebook", lambda src, dst, **kw: Path(dst).write_text("x"))
    notebook_runner.run_all("full")
    commit["now"] = "b" * 40
    notebook_runner.run_all("full", force=True)             # a later invocation running the notebook again
    prov_path = project / "results" / "provenance.json"
    prov = json.loads(prov_path.read_text())
    text = readme.read_text()
    block = text.split(start + "\n", 1)[1].split("\n" + end, 1)[0]
    assert block == notebook_runner.timing_block(prov, "results/provenance.json")
    assert "last invoked at commit `bbbbbbbbbbbb`" in block and "| 00_a.ipynb |" in block
    assert "| ran | bbbbbbb |" in block and "aaaaaaa" not in block
    assert text.startswith("intro\n") and text.endswith("tail\n")
    notebook_runner.run_all("cpu", force=True)               # results/cpu/: the README keeps the committed record
    assert readme.read_text() == text


def test_a_failed_execution_keeps_the_last_good_copy_and_is_not_skipped_as_unchanged(project, monkeypatch):
    """papermill writes the executed copy cell by cell and leaves it behind when a cell raises (or the run is
    interrupted); written to the copy's own name, a failed re-run of an unchanged notebook (--force, a transient
    error) replaced the last good copy, and the next run skipped it as unchanged and its timing table said so."""
    def good(src, dst, parameters, **kw):
        Path(dst).write_text("complete")

    def fails(src, dst, parameters, **kw):
        Path(dst).write_text("half-executed, with a traceback")
        raise RuntimeError("a cell raised")

    monkeypatch.setattr("papermill.execute_notebook", good)
    notebook_runner.run_all("cpu")
    copy = project / "results" / "cpu" / "notebooks" / "00_a.ipynb"
    monkeypatch.setattr("papermill.execute_notebook", fails)
    with pytest.raises(RuntimeError, match="a cell raised"):
        notebook_runner.run_all("cpu", force=True)
    assert copy.read_text() == "complete"  # the last successful execution, which its record describes
    failed = project / "results" / "cpu" / "notebooks" / "00_a.failed.ipynb"
    assert failed.read_text() == "half-executed, with a traceback"  # kept apart, to read the error
    assert sorted(p.name for p in copy.parent.iterdir()) == ["00_a.failed.ipynb", "00_a.ipynb"]
    prov = json.loads((project / "results" / "cpu" / "provenance.json").read_text())
    assert [r["executed"] for r in prov["notebooks"]] == ["00_a.ipynb"] and not prov["notebooks"][0]["skipped"]
    monkeypatch.setattr("papermill.execute_notebook", good)
    notebook_runner.run_all("cpu", force=True)
    assert copy.read_text() == "complete" and not failed.exists()  # a later success clears the failed copy


def test_config2_notebook_fingerprint_tracks_the_chosen_loss_weight(project):
    """Notebook 07 trains Config 2 at the kappa notebook 06 recorded: a new choice must re-run it, not skip it."""
    nb = project / "notebooks" / "07_expressiveness.ipynb"
    nb.write_text((project / "notebooks" / "00_a.ipynb").read_text())
    tables = project / "results" / "smoke" / "tables"
    tables.mkdir(parents=True)
    base = fingerprint(nb, {"preset": "smoke"}, project)
    (tables / "loss_weight_selection.csv").write_text("model,kappa,chosen\nFaceFormer,0.1,True\n")
    chosen = fingerprint(nb, {"preset": "smoke"}, project)
    assert chosen != base
    (tables / "table2_lipsync.csv").write_text("a\n1\n")  # other tables are not its input
    assert fingerprint(nb, {"preset": "smoke"}, project) == chosen
    (tables / "loss_weight_selection.csv").write_text("model,kappa,chosen\nFaceFormer,1.0,True\n")
    assert fingerprint(nb, {"preset": "smoke"}, project) != chosen


def test_claims_notebook_is_not_rerun_for_the_table_it_writes_itself(project, monkeypatch):
    """Notebook 10 reads tables/*.csv and writes tables/training_length_sensitivity.csv: its fingerprint, taken
    before it ran, did not hold that table, so the next make figures re-ran it with nothing changed."""
    nb = project / "notebooks" / "10_claims.ipynb"
    nb.write_text((project / "notebooks" / "00_a.ipynb").read_text())
    tables = project / "results" / "cpu" / "tables"
    calls = []

    def fake_execute(src, dst, parameters, **kw):
        calls.append(Path(src).stem)
        tables.mkdir(parents=True, exist_ok=True)
        if Path(src).stem == "00_a":
            (tables / "table2.csv").write_text(f"a\n{(project / 'p3d' / 'beta.py').read_text()}")
        else:
            (tables / "training_length_sensitivity.csv").write_text("pairs\n3\n")
        Path(dst).write_text("x")

    monkeypatch.setattr("papermill.execute_notebook", fake_execute)
    notebook_runner.run_all("cpu")
    assert calls == ["00_a", "10_claims"]
    notebook_runner.run_all("cpu")
    assert calls == ["00_a", "10_claims"]                    # nothing changed: nothing ran
    (project / "p3d" / "beta.py").write_text("X = 2\n")    # 00_a re-runs and changes a table 10 reads
    notebook_runner.run_all("cpu")
    assert calls[2:] == ["00_a", "10_claims"]
    notebook_runner.run_all("cpu")
    assert len(calls) == 4
    (tables / "table2.csv").write_text("a\nedited\n")       # a table changed outside: 10 re-runs
    notebook_runner.run_all("cpu")
    assert calls[4:] == ["10_claims"]


def test_a_failed_execution_is_recorded_and_re_run_even_when_its_fingerprint_comes_back(project, monkeypatch):
    """A failed execution may have rewritten some of its tables before the cell that raised. The record kept the
    last success's fingerprint, so reverting the change that broke it (or a --force re-run that failed for a
    passing reason) made the next run skip it as unchanged, the partial tables left in place."""
    table = project / "results" / "cpu" / "tables" / "t.csv"
    beta = project / "p3d" / "beta.py"

    def execute(src, dst, parameters, **kw):
        table.parent.mkdir(parents=True, exist_ok=True)
        table.write_text(beta.read_text())
        Path(dst).write_text("cells")
        if beta.read_text() == "X = 2\n":
            raise KeyError("a later cell raised")

    monkeypatch.setattr("papermill.execute_notebook", execute)
    notebook_runner.run_all("cpu")
    beta.write_text("X = 2\n")
    with pytest.raises(KeyError):
        notebook_runner.run_all("cpu")
    prov = json.loads((project / "results" / "cpu" / "provenance.json").read_text())
    failed = prov["notebooks"][0]
    assert failed["failed"] == "KeyError: 'a later cell raised'" and failed["fingerprint"] is None
    assert "| 00_a.ipynb | 0.0 min (0 s) | failed |" in notebook_runner.timing_markdown(prov)
    beta.write_text("X = 1\n")                                 # the change reverted: the old fingerprint again
    again = notebook_runner.run_all("cpu")
    assert not again["notebooks"][0]["skipped"] and "failed" not in again["notebooks"][0]
    assert table.read_text() == "X = 1\n"
    assert notebook_runner.run_all("cpu")["notebooks"][0]["skipped"]


def test_failure_is_one_line():
    class PapermillLike(Exception):
        ename, evalue = "ValueError", "bad\nvalue"

    assert notebook_runner._failure(PapermillLike("long\ntraceback")) == "ValueError: bad; value"
    assert notebook_runner._failure(KeyboardInterrupt()) == "KeyboardInterrupt"
    assert len(notebook_runner._failure(RuntimeError("x" * 1000))) == 300


def test_user_study_notebook_fingerprint_tracks_the_answers_collected(project):
    """Notebook 09 analyses the answers in <results>/user_study/<study>/responses/; answers that arrived after its
    last run left it skipped as unchanged, the study never analysed."""
    nb = project / "notebooks" / "09_user_study.ipynb"
    nb.write_text((project / "notebooks" / "00_a.ipynb").read_text())
    base = fingerprint(nb, {"preset": "smoke"}, project)
    responses = project / "results" / "smoke" / "user_study" / "ab" / "responses"
    responses.mkdir(parents=True)
    assert fingerprint(nb, {"preset": "smoke"}, project) == base
    (responses / "P01.json").write_text('{"participant_id": "P01"}')
    first = fingerprint(nb, {"preset": "smoke"}, project)
    assert first != base
    (responses / "P02.csv").write_text("participant_id\nP02\n")
    second = fingerprint(nb, {"preset": "smoke"}, project)
    assert second != first
    (project / "results" / "smoke" / "user_study" / "ab" / "manifest.json").write_text("{}")  # its own output
    assert fingerprint(nb, {"preset": "smoke"}, project) == second


def test_each_execution_records_the_checkout_it_started_from(project, monkeypatch):
    """A commit or an edit while make figures runs is the code of the notebooks started after it (each kernel
    imports p3d afresh, and their fingerprints hash it); their records named the invocation's first commit."""
    nbdir = project / "notebooks"
    (nbdir / "01_b.ipynb").write_text((nbdir / "00_a.ipynb").read_text())
    commit = {"now": "a" * 40}
    monkeypatch.setattr("p3d.provenance.git_commit", lambda *a, **k: commit["now"])

    def execute(src, dst, parameters, **kw):
        Path(dst).write_text("x")
        commit["now"] = "a" * 40 + "-dirty"                 # p3d edited while 00_a ran

    monkeypatch.setattr("papermill.execute_notebook", execute)
    prov = notebook_runner.run_all("cpu")
    assert [(r["executed"], r["git_commit"]) for r in prov["notebooks"]] == [
        ("00_a.ipynb", "a" * 40), ("01_b.ipynb", "a" * 40 + "-dirty")]


def test_each_execution_records_the_machine_it_was_timed_on(project, monkeypatch):
    """The timing table keeps each execution's wall time from its last run, possibly on another machine than the
    invocation that wrote the record, whose machine was the only one recorded (and without its processor model)."""
    nbdir = project / "notebooks"
    (nbdir / "01_b.ipynb").write_text((nbdir / "00_a.ipynb").read_text())
    monkeypatch.setattr("papermill.execute_notebook", lambda src, dst, **kw: Path(dst).write_text("x"))
    here = {"platform": "Linux", "cpus": 2, "cpu": "AMD Ryzen 9 9950X"}
    monkeypatch.setattr("p3d.provenance.machine", lambda: dict(here))
    notebook_runner.run_all("cpu")
    here["cpu"] = "AMD EPYC 7B12"                              # another machine re-runs one notebook
    prov = notebook_runner.run_all("cpu", only=["01"], force=True)
    assert prov["machine"]["cpu"] == "AMD EPYC 7B12"
    assert [(r["executed"], r["machine"]["cpu"]) for r in prov["notebooks"]] == [
        ("00_a.ipynb", "AMD Ryzen 9 9950X"), ("01_b.ipynb", "AMD EPYC 7B12")]


def test_machine_names_the_processor():
    from p3d.provenance import machine, record

    assert set(machine()) == {"platform", "cpus", "cpu"} and isinstance(machine()["cpu"], str)
    assert record()["machine"] == machine()


def test_metric_validation_fingerprint_tracks_which_talkers_have_test_predictions(project):
    """Notebook 08 scores every talker in runs/<preset>/talkers with a prediction of each synth-voca test clip;
    talkers that appeared there (make figures EXTRA=1's per-model-kappa runs, trained by notebook 06) left it
    skipped as unchanged."""
    nb = project / "notebooks" / "08_metric_validation.ipynb"
    nb.write_text((project / "notebooks" / "00_a.ipynb").read_text())
    base = fingerprint(nb, {"preset": "cpu"}, project)
    other = project / "notebooks" / "00_a.ipynb"                # another notebook does not read them
    other_base = fingerprint(other, {"preset": "cpu"}, project)
    talkers = project / "runs" / "cpu" / "talkers"
    (talkers / "ff_none" / "pred_synth-voca_val").mkdir(parents=True)
    (talkers / "ff_none" / "pred_synth-voca_val" / "c0_condition_A.npy").write_bytes(b"1")  # not test
    assert fingerprint(nb, {"preset": "cpu"}, project) == base
    pred = talkers / "ff_none" / "pred_synth-voca_test_c1"
    pred.mkdir()
    (pred / "c0_condition_A.npy").write_bytes(b"1")
    one = fingerprint(nb, {"preset": "cpu"}, project)
    assert one != base
    (pred / "c0_condition_A.npy").write_bytes(b"2")  # its contents follow from the code, already hashed
    assert fingerprint(nb, {"preset": "cpu"}, project) == one
    (talkers / "ff_ours_kappa0.1" / "pred_synth-voca_test").mkdir(parents=True)
    (talkers / "ff_ours_kappa0.1" / "pred_synth-voca_test" / "c0_condition_A.npy").write_bytes(b"1")
    assert fingerprint(nb, {"preset": "cpu"}, project) != one
    assert fingerprint(other, {"preset": "cpu"}, project) == other_base
    # the talkers it scores are the plan's at the chosen loss weight: another kappa, other runs (whether trained or not)
    two = fingerprint(nb, {"preset": "cpu"}, project)
    (project / "results" / "cpu" / "tables").mkdir(parents=True)
    (project / "results" / "cpu" / "tables" / "loss_weight_selection.csv").write_text("kappa,chosen\n0.1,True\n")
    assert fingerprint(nb, {"preset": "cpu"}, project) != two


def test_a_notebook_removed_from_the_compendium_leaves_the_record(project, monkeypatch):
    """The record of a notebook renamed or removed was kept and the timing table listed it as 'unchanged'."""
    nbdir = project / "notebooks"
    (nbdir / "05_old.ipynb").write_text((nbdir / "00_a.ipynb").read_text())
    monkeypatch.setattr("papermill.execute_notebook", lambda src, dst, **kw: Path(dst).write_text("x"))
    monkeypatch.setattr(notebook_runner, "EXTRA_PARAMETER_SETS", {"00_a": [{"x": 1}]})
    notebook_runner.run_all("cpu", extra=True)
    (nbdir / "05_old.ipynb").rename(nbdir / "05_new.ipynb")
    prov = notebook_runner.run_all("cpu", only=["00"])
    assert [r["executed"] for r in prov["notebooks"]] == ["00_a-x=1.ipynb", "00_a.ipynb"]  # the extra run kept
    prov = notebook_runner.run_all("cpu")
    assert [r["executed"] for r in prov["notebooks"]] == ["00_a-x=1.ipynb", "00_a.ipynb", "05_new.ipynb"]
    assert "05_old" not in notebook_runner.timing_markdown(prov)


def test_module_closure_strips_shell_lines_and_scans_unparsable_cells(project):
    """A ``!`` shell line is dropped before parsing, as a ``%`` magic is (a multi-line import after it is still
    read); a cell that does not parse otherwise (``files = !ls``) falls back to a line scan, which still finds the
    names a ``from p3d import a, b`` line imports."""
    want = {"__init__.py", "beta.py"}
    shell = {p.name for p in module_closure(["!ls\nfrom p3d import (\n    beta,\n)"], project)}
    assert shell == want
    unparsable = {p.name for p in module_closure(["files = !ls\nfrom p3d import beta, gamma"], project)}
    assert unparsable == want | {"gamma.py"}


def test_module_closure_includes_every_parent_package(project):
    """Importing p3d.sub.deep.mod runs p3d/sub/__init__.py and p3d/sub/deep/__init__.py: both are in the closure."""
    deep = project / "p3d" / "sub" / "deep"
    deep.mkdir(parents=True)
    (project / "p3d" / "sub" / "__init__.py").write_text("")
    (deep / "__init__.py").write_text("")
    (deep / "mod.py").write_text("Z = 1\n")
    files = {str(p.relative_to(project)) for p in module_closure(["from p3d.sub.deep.mod import Z"], project)}
    assert files == {"p3d/__init__.py", "p3d/sub/__init__.py", "p3d/sub/deep/__init__.py", "p3d/sub/deep/mod.py"}


@pytest.mark.parametrize("pin", ["pyproject.toml", "constraints.txt"])
def test_fingerprint_tracks_the_dependency_pins(project, pin):
    """The module docstring: the fingerprint hashes the pyproject.toml / constraints.txt pins as well."""
    nb = project / "notebooks" / "00_a.ipynb"
    (project / "constraints.txt").write_text("torch==2.3.0\n")
    base = fingerprint(nb, {"preset": "cpu"}, project)
    (project / pin).write_text((project / pin).read_text() + "numpy==2.0.0\n")
    assert fingerprint(nb, {"preset": "cpu"}, project) != base


def test_user_study_fingerprint_ignores_a_folder_among_the_answers(project):
    """Only files are inputs (:func:`notebook_runner.input_files`): a folder matching ``responses/*`` is neither
    hashed nor read (reading it was an IsADirectoryError)."""
    nb = project / "notebooks" / "09_user_study.ipynb"
    nb.write_text((project / "notebooks" / "00_a.ipynb").read_text())
    responses = project / "results" / "smoke" / "user_study" / "ab" / "responses"
    responses.mkdir(parents=True)
    (responses / "P01.json").write_text('{"participant_id": "P01"}')
    base = fingerprint(nb, {"preset": "smoke"}, project)
    (responses / "old").mkdir()
    assert fingerprint(nb, {"preset": "smoke"}, project) == base


def test_data_hashes_cover_meta_and_clips(project):
    """Each corpus' hash covers its meta.json and clips.csv: a change of either changes it."""
    corpus = project / "data" / "cpu" / "synth-voca"
    corpus.mkdir(parents=True)
    (corpus / "meta.json").write_text("{}")
    no_clips = notebook_runner.data_hashes("cpu", project)["synth-voca"]
    (corpus / "clips.csv").write_text("clip\na\n")
    first = notebook_runner.data_hashes("cpu", project)["synth-voca"]
    (corpus / "clips.csv").write_text("clip\nb\n")
    second = notebook_runner.data_hashes("cpu", project)["synth-voca"]
    assert len({no_clips, first, second}) == 3
    (corpus / "meta.json").write_text('{"seed": 1}')
    assert notebook_runner.data_hashes("cpu", project)["synth-voca"] != second


def test_timing_markdown_rows_for_a_skipped_grid_one_sitting_and_an_earlier_failure():
    """A grid not run now is listed with its time but not summed into what ran; a grid of one sitting has one
    row (no 'last sitting', no sum over sittings); a failure recorded by an earlier invocation says so."""
    prov = {"grid": {"wall_s": 600.0, "workers": 2, "git_commit": "c" * 40, "sittings": 1, "sittings_total_s": 600.0,
                     "skipped": True},
            "notebooks": [{"executed": "a.ipynb", "wall_s": 60.0, "skipped": False, "git_commit": "a" * 40},
                          {"executed": "b.ipynb", "wall_s": 30.0, "skipped": True, "git_commit": "b" * 40,
                           "failed": "ValueError: bad"}]}
    lines = notebook_runner.timing_markdown(prov).splitlines()
    assert "| executions that ran | 1.0 min | | |" in lines              # 60 s: neither the grid nor b.ipynb
    grid_rows = [line for line in lines if "grid" in line]
    assert len(grid_rows) == 1 and "last sitting" not in grid_rows[0] and "not run now" in grid_rows[0]
    assert "| b.ipynb | 0.5 min (30 s) | failed (an earlier invocation; not run now) | bbbbbbb |" in lines


def test_sittings_task_seconds_leave_out_a_failed_task_time(tmp_path):
    """Only finished tasks' seconds are summed: the time a task spent before it failed is not its cost."""
    path = tmp_path / notebook_runner.SITTINGS_FILE
    sitting = notebook_runner.GridSittings(path, "abc")
    sitting.tick({"task": "train:x", "seconds": 3.0, "status": "failed: diverged"})
    sitting.tick({"task": "train:y", "seconds": 2.0, "status": "done"})
    assert notebook_runner.GridSittings.task_seconds(path) == {"train:y": 2.0}


def test_an_unreadable_sittings_file_starts_the_count_afresh(tmp_path):
    """GridSittings on a damaged file warns and counts this sitting alone (no traceback in make figures)."""
    path = tmp_path / notebook_runner.SITTINGS_FILE
    for text in ("{not json", "[1, 2]"):
        path.write_text(text)
        sitting = notebook_runner.GridSittings(path, "abc")
        sitting.tick()
        assert len(sitting.entries) == 1 and json.loads(path.read_text())["sittings"][0]["git_commit"] == "abc"


def test_the_record_is_written_after_each_execution(project, monkeypatch):
    """An interrupted make figures keeps what finished: while the second notebook runs, provenance.json already
    records the first one's execution."""
    nbdir = project / "notebooks"
    (nbdir / "01_b.ipynb").write_text((nbdir / "00_a.ipynb").read_text())
    prov_path = project / "results" / "cpu" / "provenance.json"
    seen = []

    def fake_execute(src, dst, parameters, **kw):
        if Path(src).name == "01_b.ipynb":
            seen.append([r["executed"] for r in json.loads(prov_path.read_text())["notebooks"]])
        Path(dst).write_text("x")

    monkeypatch.setattr("papermill.execute_notebook", fake_execute)
    notebook_runner.run_all("cpu")
    assert seen == [["00_a.ipynb"]]


def test_only_numbered_notebooks_are_part_of_the_compendium(project):
    """notebooks(): the files whose names start with a two-digit number, in order; a scratch notebook is not run."""
    nbdir = project / "notebooks"
    (nbdir / "scratch.ipynb").write_text((nbdir / "00_a.ipynb").read_text())
    (nbdir / "10_z.ipynb").write_text((nbdir / "00_a.ipynb").read_text())
    assert [nb.name for nb in notebooks(project)] == ["00_a.ipynb", "10_z.ipynb"]


def test_a_sitting_with_nothing_left_to_train_is_still_recorded(project, monkeypatch):
    """A grid found finished (no task ran in this sitting) still writes this sitting's entry beside the runs, so the
    count of sittings in the file is the provenance's."""
    class Grid:
        tasks = [1]

    monkeypatch.setattr("p3d.experiments.preset_grid", lambda preset, dirs, **kw: Grid() if preset == "full" else None)
    monkeypatch.setattr("papermill.execute_notebook", lambda src, dst, **kw: Path(dst).write_text("x"))
    prov = notebook_runner.run_all("full")
    entries = json.loads((project / "runs" / "full" / notebook_runner.SITTINGS_FILE).read_text())["sittings"]
    assert len(entries) == prov["grid"]["sittings"] == 1
