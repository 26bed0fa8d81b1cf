"""Train from Python (notebooks): :func:`fit` is ``p3d train KIND`` as a function that reuses finished runs.

    from p3d.train.api import fit
    stage1 = fit("stage1", "cpu", "data/cpu/synth-lrs3", "runs/cpu/stage1")
    critic = fit("stage2", "cpu", "data/cpu/synth-lrs3", "runs/cpu/stage2", stage1=stage1)

A run folder whose ``final.pt`` was written for the same request (``request.json``: kind, preset,
data, options) is reused without loading any data; an unfinished one resumes from its last
checkpoint (:func:`p3d.train.trainer.train`); a longer ``steps`` extends a finished one; a folder
holding other settings is refused rather than silently mixed (:func:`claim_run_dir`, the same check
as ``p3d train``), and a claim whose data load or training failed before anything was trained is taken back
(:func:`claimed_run_dir`). ``force=True`` trains again from scratch in the same folder.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from p3d.errors import InputError
from p3d.registry import CRITICS
from p3d.train.request import run_request

log = logging.getLogger(__name__)


#: Request options that do not change the trained weights (or that the trainer compares in their resolved
#: form, as ``device``): a request that differs only in these is the same request.
NEUTRAL_OPTIONS: frozenset[str] = frozenset({"workers", "threads", "device", "progress", "cache_dir",
                                             "speech_cache_dir", "checkpoint_every"})


def _request(kind: str, preset: str, data: str | os.PathLike[str], options: dict[str, Any]) -> dict[str, Any]:
    from p3d.train.critics import build

    return run_request(kind, preset, data, options, build)


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix.rstrip("."): d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})  # {}: no entries
    return out


def _is_main() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


#: Beside ``request.json``: what the run's data folders and upstream checkpoints held when it was claimed
#: (:func:`data_fingerprint`).
DATA_RECORD = "data.json"
#: The prefix of an upstream checkpoint's entry in :data:`DATA_RECORD` (``checkpoint:<option>``).
CHECKPOINT_PREFIX = "checkpoint:"
#: The entry of :data:`DATA_RECORD` that fingerprints the code's recipe of the run (:func:`recipe_fingerprint`).
RECIPE_KEY = "recipe"
#: The entry of :data:`DATA_RECORD` that fingerprints the preset's architecture (:func:`architecture_fingerprint`).
ARCHITECTURE_KEY = "architecture"
#: The entry of :data:`DATA_RECORD` holding the code's settings of the run by name (:func:`code_settings`).
SETTINGS_KEY = "settings"
#: The prefix of a data folder's entry in :data:`DATA_RECORD` holding the content hashes of its templates.pkl and
#: clips.csv (``corpus_files:<folder>``, :data:`p3d.corpus.FINGERPRINT_FILES`), adopted like a checkpoint's.
FILES_PREFIX = "corpus_files:"
#: Entries of :data:`DATA_RECORD` that a record made before they existed adopts (instead of refusing the run); a
#: ``settings`` entry the record lacks is adopted at today's value (:func:`_changed_settings`). The trainer's rule
#: for ``config.json`` (:data:`p3d.train.trainer.IMPLIED_BY_OLDER_RECORDS`: a record from before a setting implies
#: the value the older code had; any other value is a change) is the other layer: ``config.json`` holds the run's
#: resolved settings and is compared on resume, ``data.json`` the code's defaults for the request, checked before
#: any data are loaded (a finished run that is reused meets only this one). The two agree because a setting added
#: since takes today's default only where that default keeps the older behaviour (``audio.trim_before_encoder``:
#: True in both).
ADOPTED_KEYS = (RECIPE_KEY, ARCHITECTURE_KEY, SETTINGS_KEY)


def _kind_preset_model(request: dict[str, Any]) -> tuple[Any, Any, Any]:
    """A run request's kind, the preset its models are built at (``model_preset`` of a preset like ``full``, else
    ``preset``) and, for a talker, its model."""
    model = request.get("model") or (request.get("options") or {}).get("model")
    return request.get("kind"), request.get("model_preset", request.get("preset")), model


def _non_default_fields(obj: Any) -> Any:
    """A config dataclass as a dict of its fields that differ from their defaults (nested configs likewise), so a
    new field at its default, which changes nothing, changes no fingerprint."""
    import dataclasses

    if not dataclasses.is_dataclass(obj):
        return obj
    return {f.name: _non_default_fields(getattr(obj, f.name)) for f in dataclasses.fields(obj)
            if f.default is dataclasses.MISSING or getattr(obj, f.name) != f.default}


def _recipes(request: dict[str, Any]) -> dict[str, Any] | None:
    """The code's default recipes of ``request`` by stage (``main`` for a critic): :data:`p3d.train.critics.RECIPES`
    of its kind, or every stage of :data:`p3d.train.talker.RECIPES` of its model, at the model preset; None for a
    kind or preset without one."""
    kind, preset, model = _kind_preset_model(request)
    if kind == "talker":
        from p3d.train.talker import RECIPES as TALKER_RECIPES

        recipes = TALKER_RECIPES.get(preset, {}).get(model)
    else:
        from p3d.train.critics import RECIPES as CRITIC_RECIPES

        recipes = CRITIC_RECIPES.get(preset, {}).get(kind)
        recipes = None if recipes is None else {"main": recipes}
    return recipes or None


def recipe_fingerprint(request: dict[str, Any]) -> str | None:
    """A short hash of the code's default recipe for ``request`` (:func:`_recipes`: :data:`p3d.train.critics.RECIPES`
    of its kind, or every stage of :data:`p3d.train.talker.RECIPES` of its model, at the model preset): its steps,
    learning rate, batch and the rest, none of which the request holds unless given as options. Fields at their
    dataclass default are left out, so a new field that changes nothing changes no hash (a changed default is seen by
    :func:`code_settings`). None for a kind or preset without one."""
    import hashlib

    recipes = _recipes(request)
    if recipes is None:
        return None
    text = json.dumps({stage: _non_default_fields(rec) for stage, rec in recipes.items()}, sort_keys=True,
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _architecture(request: dict[str, Any]) -> Any:
    """The model preset's config the code builds for ``request`` before the training data set its vertex count and
    styles (:func:`architecture_fingerprint`), or None."""
    from p3d.errors import InputError

    kind, preset, model = _kind_preset_model(request)
    if kind == "talker":
        from p3d.models.talker import talker_class

        config_class: Any = talker_class(model).config_class if model else None
    elif kind == "stage1":
        from p3d.models.stage1 import Stage1Config as config_class
    elif kind in ("stage2", "evaluator"):
        from p3d.models.mesh_encoder import MeshEncoderConfig as config_class
    elif kind == "no2d":
        from p3d.models.speech_mesh import SpeechMeshConfig as config_class
    elif kind == "syncnet3d":
        from p3d.models.syncnet3d import SyncNet3DConfig as config_class
    else:
        return None
    if config_class is None or not isinstance(preset, str):
        return None
    try:
        return config_class.from_preset(preset)
    except InputError:  # not a model preset
        return None


def architecture_fingerprint(request: dict[str, Any]) -> str | None:
    """A short hash of the architecture the code builds for ``request``: the model preset's config of its talker
    (:meth:`p3d.models.base.PresetConfig.from_preset`) or critic (stage 1, the mesh encoder of stage 2 and the
    evaluator, the dual encoder of ``no2d``, 3D SyncNet), before the training data set its vertex count and styles.
    A finished run keeps the architecture it was trained with (its checkpoint holds its config), so without this a
    run trained before a preset's width or depth changed would be reused as today's. Fields at their defaults are
    left out (:func:`recipe_fingerprint`), so a new field that changes nothing changes no hash; by the same token a
    changed default of a config class (the ``paper`` preset is the classes' defaults) is not seen here but by
    :func:`code_settings`. None for ``finetune`` (its architecture is its ``init`` checkpoint's, which is
    fingerprinted) or a preset without one."""
    import hashlib

    config = _architecture(request)
    if config is None:
        return None
    text = json.dumps(_non_default_fields(config), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def code_settings(request: dict[str, Any]) -> dict[str, Any]:
    """Every setting the code's config dataclasses give ``request`` before its data, by dotted name, as JSON stores
    it: ``architecture.<field>`` (:func:`architecture_fingerprint`'s config, nested configs flattened),
    ``recipe.<stage>.<field>`` (:func:`recipe_fingerprint`'s recipes) and, for a critic, ``train.<field>``: the
    trainer's defaults its recipe leaves as they are (:data:`p3d.train.critics.TRAINER_DEFAULTS`). Unlike the
    fingerprints, fields at their defaults are in: a default changed in the code (a width, a dropout, a number of
    layers, a loss setting, Adam's betas) changes the value of that setting, which the run's record names
    (:func:`_check_data`). Empty for a request without any."""
    import dataclasses

    from p3d.atomic import _json_default

    settings: dict[str, Any] = {}
    architecture = _architecture(request)
    if architecture is not None:
        settings["architecture"] = dataclasses.asdict(architecture)
    recipes = _recipes(request)
    if recipes is not None:
        settings["recipe"] = {stage: dataclasses.asdict(rec) for stage, rec in recipes.items()}
        if request.get("kind") != "talker":
            from p3d.train.critics import TRAINER_DEFAULTS
            from p3d.train.trainer import TrainConfig

            defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
            settings["train"] = {name: defaults[name] for name in TRAINER_DEFAULTS}

    def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:  # an empty dict field is a value, {}
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) and v else {f"{prefix}{k}": v})
        return out

    return flat(json.loads(json.dumps(settings, default=_json_default)))


def code_record(request: dict[str, Any]) -> dict[str, Any]:
    """The entries of :data:`DATA_RECORD` that the code gives ``request`` (its data and checkpoints aside): ``recipe``
    (:func:`recipe_fingerprint`), ``architecture`` (:func:`architecture_fingerprint`) and ``settings``
    (:func:`code_settings`), each where the request has one."""
    record: dict[str, Any] = {}
    for key, fingerprint in ((RECIPE_KEY, recipe_fingerprint), (ARCHITECTURE_KEY, architecture_fingerprint)):
        value = fingerprint(request)
        if value is not None:
            record[key] = value
    settings = code_settings(request)
    if settings:
        record[SETTINGS_KEY] = settings
    return record


def data_fingerprint(request: dict[str, Any]) -> dict[str, Any]:
    """Per data folder of ``request`` (``data`` of ``p3d train``, ``train`` of the experiment grid), its
    :func:`p3d.corpus.corpus_fingerprint` (meta.json and the clips' names and sizes, no clip read): a corpus
    regenerated with other settings or clips at the same path changes it; the same corpus written again does not.
    And ``corpus_files:<folder>`` (:data:`FILES_PREFIX`): the content hashes of its templates.pkl and clips.csv,
    so a corrected template or a clip moved to another split is told too (a record without it adopts it).
    And per option naming a checkpoint file (``stage1``, ``init``, the grid's ``critic_checkpoint``: the run is
    built on its weights), ``checkpoint:<option>``: the file's SHA-256, so an upstream run retrained or extended at
    the same path is told from the one this run was trained on. And ``recipe``: :func:`recipe_fingerprint`, so a
    run trained with the code's earlier defaults is not reused as if trained with today's; ``architecture``:
    :func:`architecture_fingerprint`, likewise for the model preset's config; ``settings``: :func:`code_settings`,
    the two by field, their defaults included."""
    from p3d.corpus import FINGERPRINT_FILES, corpus_fingerprint
    from p3d.provenance import stamped_sha256

    roots = request.get("data", request.get("train"))
    roots = [] if roots is None else [roots] if isinstance(roots, str) else list(roots)
    record: dict[str, Any] = {}
    for r in roots:
        fp = corpus_fingerprint(r)
        record[str(r)] = str(fp["fingerprint"])
        record[FILES_PREFIX + str(r)] = {field: fp[field] for field in FINGERPRINT_FILES}
    record.update(code_record(request))
    for key, value in sorted(_flat(request).items()):
        if isinstance(value, str) and value.endswith((".pt", ".pth")) and Path(value).is_file():
            record[CHECKPOINT_PREFIX + key.rsplit(".", 1)[-1]] = stamped_sha256(value)
    return record


def _changed_settings(out: Path, recorded: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """Refuse a run whose recorded code settings (:data:`SETTINGS_KEY`, :func:`code_settings`) differ from today's
    ``settings``, naming each (``architecture.dropout: 0.1 -> 0.0``); return the settings the record lacks (a field
    added since, at the default that keeps the run's behaviour), which it adopts. A setting recorded but no longer
    in the code (a field removed) is not compared."""
    if not isinstance(recorded, dict):
        return {}

    def show(value: Any) -> str:
        text = json.dumps(value)
        return text if len(text) <= 60 else text[:57] + "..."

    changes = [f"{k}: {show(recorded[k])} -> {show(v)}" for k, v in settings.items()
               if k in recorded and recorded[k] != v]
    if changes:
        raise InputError(f"--out {out}: its run was trained with other settings of the code ({'; '.join(changes)}: a "
                         "preset or a config default changed since); use another --out, or force=True / delete it to "
                         "retrain")
    return {k: v for k, v in settings.items() if k not in recorded}


def _check_data(out: Path, data: dict[str, Any]) -> None:
    """Refuse a run folder whose data folders, upstream checkpoints, code settings, recipe or architecture changed
    since it was claimed; record them for a run without a record (one trained before the record existed), and an
    upstream checkpoint, recipe, architecture or code setting the record lacks (one made before they were
    recorded: it adopts today's)."""
    from p3d.atomic import write_json

    path = out / DATA_RECORD
    if not path.is_file():
        if _is_main() and out.is_dir():
            write_json(path, data)
        return
    recorded = json.loads(path.read_text())
    adopted = {k: v for k, v in data.items()
               if (k.startswith((CHECKPOINT_PREFIX, FILES_PREFIX)) or k in ADOPTED_KEYS) and k not in recorded}
    if SETTINGS_KEY in recorded:  # before the fingerprints: it names the setting that changed
        new_settings = _changed_settings(out, recorded[SETTINGS_KEY], data.get(SETTINGS_KEY, {}))
        if new_settings:
            adopted[SETTINGS_KEY] = {**recorded[SETTINGS_KEY], **new_settings}
    changed = [k for k in dict.fromkeys([*recorded, *data])
               if k not in adopted and k != SETTINGS_KEY and recorded.get(k) != data.get(k)]
    if RECIPE_KEY in changed:
        raise InputError(f"--out {out}: its run was trained with other defaults of this kind and preset (the code's "
                         "recipe: steps, learning rate, batch, ... changed since); use another --out, or "
                         "force=True / delete it to retrain")
    if ARCHITECTURE_KEY in changed:
        raise InputError(f"--out {out}: its run was trained with another architecture of this model preset (the "
                         "code's preset config: width, depth, ... changed since); use another --out, or force=True / "
                         "delete it to retrain")
    folders = [k for k in changed if not k.startswith((CHECKPOINT_PREFIX, FILES_PREFIX))]
    if folders:
        raise InputError(f"--out {out}: its run was trained on other data at the same path ({', '.join(folders)} "
                         "was regenerated or replaced since); use another --out, or force=True / delete it to retrain")
    files = [k.removeprefix(FILES_PREFIX) for k in changed if k.startswith(FILES_PREFIX)]
    if files:
        raise InputError(f"--out {out}: its run was trained on other data at the same path (the templates.pkl or "
                         f"clips.csv of {', '.join(files)} changed since: another template or split); use another "
                         "--out, or force=True / delete it to retrain")
    if changed:
        names = ", ".join(k.removeprefix(CHECKPOINT_PREFIX) for k in changed)
        raise InputError(f"--out {out}: its run was built on another checkpoint at the same path ({names}: retrained, "
                         "extended or replaced since); use another --out, or force=True / delete it to retrain")
    if adopted and _is_main():
        write_json(path, {**recorded, **adopted})


def check_code(out: str | os.PathLike[str], request: dict[str, Any]) -> None:
    """The code's part of a claim alone (:func:`code_record` against ``out``'s :data:`DATA_RECORD`), for a finished
    run reused without a claim (the experiment grid's equal-length run asked for by an evaluation): refuse it if
    it was trained with other code settings, recipe or architecture than today's for its recorded ``request``;
    a record without some adopts them. A folder without a record is left as it is."""
    out = Path(out)
    path = out / DATA_RECORD
    if path.is_file():
        recorded = json.loads(path.read_text())
        _check_data(out, {**{k: v for k, v in recorded.items() if k not in ADOPTED_KEYS}, **code_record(request)})


def resolved_request(request: dict[str, Any]) -> dict[str, Any]:
    """``request`` (:func:`p3d.train.request.run_request`'s form) with the options it leaves to the code's defaults
    filled in where they follow from its kind, preset and other options alone, before any data are loaded
    (:func:`p3d.train.critics.request_defaults`, :func:`p3d.train.talker.request_defaults`): the form in which two
    requests are compared, so ``--lr 0.001`` where 0.001 is the preset's default is the request without ``--lr``,
    as :func:`p3d.train.trainer.resume_plan` sees it in the resolved settings. The stopping rule's options of a
    fixed-step run without validation are left out, as :meth:`p3d.train.trainer.TrainConfig.to_dict` leaves them
    out of ``config.json`` (they change nothing). A request of another form (the experiment grid's), or one whose
    defaults cannot be resolved (an unknown kind, preset or model; options the builder refuses), is returned as it
    is."""
    options = request.get("options")
    if not isinstance(options, dict):
        return request
    kind, preset = request.get("kind"), request.get("preset")
    try:
        if kind == "talker":
            from p3d.train.talker import request_defaults

            defaults = request_defaults(preset, options)
        else:
            from p3d.train.critics import request_defaults as critic_defaults

            defaults = critic_defaults(kind, preset, options)
    except InputError:
        return request
    resolved = {**defaults, **{k: v for k, v in options.items() if v is not None}}
    if resolved.get("stop") == "steps" and not resolved.get("eval_every"):
        from p3d.train.trainer import TrainConfig

        for name in TrainConfig.STOP_FIELDS:
            resolved.pop(name, None)
    return {**request, "options": resolved}


def default_steps(request: dict[str, Any]) -> int | None:
    """The ``steps`` that ``request`` (:func:`p3d.train.request.run_request`'s form) trains when it leaves them out
    (a talker: its last stage's), where they follow from its kind, preset and model alone: the recipe's fixed step
    count (:class:`p3d.train.critics.Recipe`, :class:`p3d.train.talker.TalkerRecipe`), what the builder then uses.
    None where they follow from the data (a recipe in epochs: ``ceil(epochs * windows / batch)``), for a request of
    another form, or one whose recipe cannot be resolved (an unknown kind, preset or model)."""
    options = request.get("options")
    if not isinstance(options, dict):
        return None
    kind, preset = request.get("kind"), request.get("preset")
    try:
        if kind == "talker":
            from p3d.models.talker import talker_class
            from p3d.train.talker import recipe as talker_recipe
            from p3d.train.talker import training_stages

            model = options.get("model")
            return talker_recipe(model, preset, training_stages(talker_class(model))[-1]).steps
        from p3d.train.critics import recipe

        return recipe(kind, preset).steps
    except InputError:
        return None


def claim_run_dir(out: Path, request: dict[str, Any], *, force: bool = False, before_write: Any = None) -> bool:
    """Guard the run folder ``out`` for ``request`` before any data are loaded; True if it holds the finished run
    (``final.pt``) of the same request.

    The request is compared with ``request.json`` option by option (:data:`NEUTRAL_OPTIONS` aside), both resolved
    (:func:`resolved_request`: an option given at its default value is the request without it): a folder
    holding other settings is refused (:class:`InputError`, ``name: old -> new`` for each); the only change
    accepted is a longer ``steps`` than the run recorded (``config.json``), an extension (the trainer records
    it). False after making the folder ready to (re)start: ``request.json`` is written for a new folder or an
    extension; an unfinished run of the same request is left to resume. A left-out ``steps`` against a recorded one
    is the recipe's (:func:`default_steps`), so a run extended past it is refused here, before the data load; one
    that follows from the data (a recipe in epochs) is left to the trainer's check
    (:func:`p3d.train.trainer.resume_plan`, which compares every resolved setting). ``force`` empties the
    folder first. ``before_write`` is called before ``request.json`` is written (extra checks). A folder whose data
    folders or upstream checkpoints changed at the same path since it was claimed (:data:`DATA_RECORD`,
    :func:`data_fingerprint`) is refused too: its run would be reused, resumed or extended on other data or
    weights."""
    from p3d.atomic import check_out_dir, write_json
    from p3d.train.run_folder import read_run_config

    out = Path(out)
    req_path = out / "request.json"
    check_out_dir(out)  # a folder (or none yet) that can be created and written
    if force and out.exists():
        from p3d.train.run_folder import remove_run_dir

        remove_run_dir(out)  # under its lock: a process training it finishes its write first
    recorded = read_run_config(out) if out.exists() else None
    previous = None
    if req_path.exists():
        try:
            previous = json.loads(req_path.read_text())
        except json.JSONDecodeError:
            raise InputError(f"{req_path}: corrupt; delete {out} or pass force=True") from None
    data = data_fingerprint(request)
    if previous is None:
        if recorded is None:  # a new folder
            if before_write is not None:
                before_write()
            if _is_main():
                out.mkdir(parents=True, exist_ok=True)
                write_json(req_path, request)
                write_json(out / DATA_RECORD, data)
        return False  # a run recorded without request.json: the trainer's check decides
    old, new = _flat(previous), _flat(request)
    # compared resolved (an option given at its default is the same request), shown as given; an option neither
    # gives resolves alike unless an option it follows from (kind, preset, model, critic, stop, ...) differs
    old_resolved, new_resolved = _flat(resolved_request(previous)), _flat(resolved_request(request))
    steps_keys = {k for k in (*old, *new) if k.rsplit(".", 1)[-1] == "steps"}

    def shown(given: dict[str, Any], resolved: dict[str, Any], k: str) -> str:  # as given, else the default it took
        return str(given[k]) if k in given else f"{resolved[k]} (default)" if k in resolved else "(default)"

    changes = [f"{k.rsplit('.', 1)[-1]}: {shown(old, old_resolved, k)} -> {shown(new, new_resolved, k)}"
               for k in dict.fromkeys([*old, *new])
               if k not in steps_keys and k.rsplit(".", 1)[-1] not in NEUTRAL_OPTIONS
               and old_resolved.get(k) != new_resolved.get(k)]
    new_steps = next((new[k] for k in steps_keys if k in new), None)
    old_given = next((old[k] for k in steps_keys if k in old), None)
    if new_steps is None and old_given is not None:  # left out: the recipe's, where it needs no data
        new_steps = default_steps(request)
    old_steps = recorded["train"]["steps"] if recorded is not None else next(
        (old[k] for k in steps_keys if k in old), None)
    if new_steps is not None and old_steps is not None and new_steps < old_steps:
        changes.append(f"steps: {old_steps} -> {new_steps} (a run is extended, never shortened)")
    if changes:
        raise InputError(f"--out {out}: holds a run with other settings: {'; '.join(changes)} (repeat its settings, "
                         f"extend it with a longer --steps, or use another --out / force=True)")
    _check_data(out, data)  # after the settings: another --preset or --data is named as such, not as changed data
    if new_steps is not None and old_steps is not None and new_steps > old_steps:
        if before_write is not None:
            before_write()
        if _is_main():
            write_json(req_path, request)
        return False
    if new_steps is None and old_given is not None:
        return False  # the data's default steps (epochs) against the recorded ones: the trainer compares them
    return (out / "final.pt").exists()


@contextlib.contextmanager
def claimed_run_dir(out: Path, request: dict[str, Any], *, force: bool = False,
                    before_write: Any = None) -> Iterator[bool]:
    """:func:`claim_run_dir` around the work that follows it (loading the data, training): yields its answer, and
    if that work fails before the trainer has written anything into ``out`` (a refused ``--data``, an interrupt
    during the data load), takes back the ``request.json`` this claim wrote, and the folder if the claim created
    it. Otherwise a corrected command into the same folder would be refused as "a run with other settings",
    though no run was ever started there. A folder already holding a request, or anything else, is left as it was.
    The claim is ``request.json`` and :data:`DATA_RECORD`, with the folder's lock file
    (:data:`p3d.train.run_folder.LOCK_FILE`) that work taking the lock before writing anything left behind (an
    earlier stage's copy interrupted, :func:`p3d.experiments.runs.copy_stage`); it is taken back only while its
    lock is free (taken without waiting), never from under a live process holding it."""
    out = Path(out)
    existed = out.exists()
    fresh_claim = force or not (out / "request.json").exists()
    try:
        yield claim_run_dir(out, request, force=force, before_write=before_write)
    except BaseException:
        if fresh_claim and _is_main():
            _take_back_claim(out, remove_folder=not existed or force)
        raise


def _take_back_claim(out: Path, remove_folder: bool) -> None:
    """Remove the fresh claim of :func:`claimed_run_dir` (and ``out`` if ``remove_folder``) if ``out`` holds
    nothing else, under its lock taken without waiting: a folder whose lock another process holds is left."""
    from p3d.train.run_folder import LOCK_FILE, run_lock

    claim = {"request.json", DATA_RECORD}

    def only_the_claim() -> bool:
        return out.is_dir() and {p.name for p in out.iterdir()} <= claim | {LOCK_FILE}

    if not only_the_claim():
        return
    try:
        with run_lock(out, wait=False):
            if not only_the_claim():  # written meanwhile by a process that held the lock before this one
                return
            for name in (*claim, LOCK_FILE):  # the lock file too: a waiter re-claims the folder now at out
                (out / name).unlink(missing_ok=True)
            if remove_folder:
                out.rmdir()
    except InputError:  # held by another live process: the folder is its
        return


def record_request(out: Path, request: dict[str, Any]) -> None:
    """Write ``request.json`` after a run that had none (a folder trained before requests were recorded), once the
    trainer accepted ``request`` for it (:func:`p3d.train.trainer.resume_plan` against its ``config.json``): after
    training it, or after finding it finished already, so the next call with the same request is reused without
    loading any data (:func:`claim_run_dir`). An existing ``request.json`` is never overwritten."""
    from p3d.atomic import write_json

    path = Path(out) / "request.json"
    if _is_main() and not path.exists():
        write_json(path, request)


def fit(kind: str, preset: str, data: str | os.PathLike[str], out: str | os.PathLike[str], *,
        force: bool = False, progress: bool = False, record: dict[str, Any] | None = None, **options: Any) -> Path:
    """Train ``kind`` (``stage1``, ``stage2``, ``syncnet3d``, ``no2d``, ``finetune``, ``evaluator``) at
    ``preset`` on the corpus ``data`` into the run folder ``out``; return ``out/final.pt``.

    ``options`` are :func:`p3d.train.critics.build`'s keyword arguments (``stage1``, ``init``,
    ``steps``, ``seed``, ``identities``, the stopping rule ``stop="plateau"`` with ``steps`` as the cap,
    ``eval_every``, ``patience``, ...: :mod:`p3d.train.convergence`). Reuses a finished run of the same
    request, resumes an unfinished one, extends a finished one to a longer ``steps``, and refuses a folder
    holding other settings (:func:`claim_run_dir`, then the trainer's check of the resolved settings).
    ``record``: extra entries for the run's ``config.json`` (descriptions, not settings of the training).
    A preset that trains another preset's models (``full``) resolves to those models with its stopping rule
    and cap as default options, and for stage 1 its own cap and bf16 autocast where the machine multiplies bf16
    natively (:func:`p3d.registry.training_defaults`).
    """
    from p3d.registry import training_defaults
    from p3d.train.critics import build
    from p3d.train.trainer import train

    preset, defaults = training_defaults(preset, kind, str(options.get("device") or "auto"))
    options = {**defaults, **options}
    out = Path(out)
    final = out / "final.pt"
    request = _request(kind, preset, data, options)
    with claimed_run_dir(out, request, force=force) as finished:
        if finished:
            log.info("%s: reusing the finished run %s", kind, final)
            return final
        job = build(kind, preset, data, progress=progress, **options)
        result = train(job.model, job.data, job.step_fn, job.cfg, out,
                       extra_config={**job.extra_config, **(record or {})}, params=job.params, progress=progress,
                       validate=getattr(job, "validate", None),
                       finalize=job.finalize if _is_main() else None)  # final.pt written under the folder's lock
    if not _is_main():  # the main process writes final.pt (ranks may hold other BatchNorm buffers)
        return final
    if result["finished"]:  # also a finished folder the trainer accepted without training (no request.json yet)
        record_request(out, request)
    if result["final"] is None:
        log.info("%s: another process finished %s meanwhile; reusing it", kind, final)
        return final
    path = result["final"]
    log.info("%s: %d steps, last loss %.4f; wrote %s", kind, result["step"], result["loss"], path)
    return path


#: The critics of Table 3 (:data:`CRITICS`, from :mod:`p3d.registry`): "ours" (stage 2 on the frozen stage-1
#: speech encoder), "syncnet3d" (3D SyncNet), "no2d" (w/o 2D prior).
#: The options of the stopping rule (:mod:`p3d.train.convergence`), passed to every stage of a pipeline.
STOP_OPTIONS: tuple[str, ...] = ("stop", "eval_every", "patience", "min_rel_improvement", "smooth")
#: The loss critics' whole pipeline (stage 1 and the critic) trains on one interleaved half of synth-lrs3's
#: training identities and the PLRS evaluator's whole pipeline on the other, so the metric never grades a
#: model with data its training signal saw.
CRITIC_IDENTITIES = "half1"
EVALUATOR_IDENTITIES = "half2"
#: The seed of both stages of the evaluator's pipeline: no critic pipeline's (pipeline 0 trains with the
#: recipes' seed 0, pipeline k >= 1 with 1000 k: :func:`critic_pipeline_seed`). The evaluator recipe's seed.
EVALUATOR_SEED = 1
#: The evaluator's own stage-1 run folder, next to ``evaluator/`` in ``runs`` (never a critic's ``stage1/``).
EVALUATOR_STAGE1_DIR = "stage1_evaluator"
EVALUATOR_DIR = "evaluator"


def critic_pipeline_seed(critic_seed: int) -> int | None:
    """The ``seed`` option of every stage of critic pipeline ``critic_seed``: None (the recipes' seed, 0) for
    pipeline 0, so its runs keep their recorded requests; pipeline k >= 1 trains every stage with seed 1000 k."""
    return None if critic_seed == 0 else 1000 * int(critic_seed)


def _is_critic_seed(seed: int, preset: str) -> bool:
    from p3d.registry import model_preset
    from p3d.train.critics import recipe

    preset = model_preset(preset)
    pipeline0 = {recipe(k, preset).seed for k in ("stage1", "stage2", "syncnet3d", "no2d", "finetune")}
    return seed in pipeline0 or (seed > 0 and seed % 1000 == 0)


def train_stage1(preset: str, corpus: str | os.PathLike[str], runs: str | os.PathLike[str], *,
                 identities: str = CRITIC_IDENTITIES, progress: bool = False, **options: Any) -> Path:
    """The loss critics' stage 1 on ``corpus`` (a corpus with lip video, e.g. synth-lrs3) into ``runs/stage1``:
    the critics' identity half (:data:`CRITIC_IDENTITIES`) of its train split."""
    return fit("stage1", preset, corpus, Path(runs) / "stage1", identities=identities, progress=progress, **options)


def train_critic(critic: str, preset: str, corpus: str | os.PathLike[str], runs: str | os.PathLike[str], *,
                 identities: str = CRITIC_IDENTITIES, seed: int | None = None, progress: bool = False,
                 **options: Any) -> Path:
    """Train one of :data:`CRITICS` on ``corpus`` into ``runs/<critic>``; "ours" first trains (or
    reuses) stage 1 in ``runs/stage1`` on the same ``identities``. Returns the critic's ``final.pt``.

    ``seed`` (None: the recipe's) seeds every stage of the pipeline (stage 1 and stage 2 for "ours"): one
    independent critic pipeline per seed, each in its own ``runs`` folder. The stopping-rule options
    (:data:`STOP_OPTIONS`) apply to stage 1 as well; the other ``options`` to the critic's own stage."""
    if critic not in CRITICS:
        raise InputError(f"critic: unknown critic {critic!r} (choose from {', '.join(CRITICS)})")
    runs = Path(runs)
    if critic == "ours":
        stop = {k: v for k, v in options.items() if k in STOP_OPTIONS}
        stage1 = train_stage1(preset, corpus, runs, identities=identities, seed=seed, progress=progress, **stop)
        return fit("stage2", preset, corpus, runs / "ours", stage1=stage1, identities=identities, seed=seed,
                   progress=progress, **options)
    return fit(critic, preset, corpus, runs / critic, identities=identities, seed=seed, progress=progress, **options)


def evaluator_independence(preset: str, corpus: str | os.PathLike[str]) -> dict[str, Any]:
    """What the evaluator's pipeline shares with the loss critics' (recorded in its ``config.json`` as
    ``shared_with_critics``): the identity halves of ``corpus``' train split, the seeds and the stage-1 run.
    Every ``shared_*`` list is empty; raises :class:`InputError` if it were not."""
    from p3d.windows import identity_subset, open_corpus

    c = open_corpus(corpus)
    critic_ids = identity_subset(c, "train", CRITIC_IDENTITIES) or []
    evaluator_ids = identity_subset(c, "train", EVALUATOR_IDENTITIES) or []
    record = {
        "critic_identities": CRITIC_IDENTITIES, "critic_identity_list": critic_ids,
        "evaluator_identities": EVALUATOR_IDENTITIES, "evaluator_identity_list": evaluator_ids,
        "shared_identities": sorted(set(critic_ids) & set(evaluator_ids)),
        "evaluator_seed": EVALUATOR_SEED,
        "critic_seeds": "pipeline 0: the recipes' (0); pipeline k >= 1: 1000 k",
        "shared_seeds": [EVALUATOR_SEED] if _is_critic_seed(EVALUATOR_SEED, preset) else [],
        "stage1": f"own ({EVALUATOR_STAGE1_DIR}/, trained on {EVALUATOR_IDENTITIES}); no critic's weights",
        "shared_weights": [],
    }
    if record["shared_identities"] or record["shared_seeds"]:
        raise InputError(f"{c.root}: the PLRS evaluator would share identities {record['shared_identities']} or "
                         f"seeds {record['shared_seeds']} with the loss critics")
    return record


def _evaluator_options(options: dict[str, Any]) -> None:
    fixed = sorted({"seed", "identities", "stage1"} & set(options))
    if fixed:
        raise InputError(f"train_evaluator: {', '.join(fixed)} cannot be set: the evaluator's pipeline trains on "
                         f"identity half {EVALUATOR_IDENTITIES} with seed {EVALUATOR_SEED} and its own stage 1, "
                         f"so it shares nothing with the loss critics")


def train_evaluator_stage1(preset: str, corpus: str | os.PathLike[str], runs: str | os.PathLike[str], *,
                           progress: bool = False, **options: Any) -> Path:
    """The PLRS evaluator's own stage 1 into ``runs/stage1_evaluator``: the evaluator's identity half
    (:data:`EVALUATOR_IDENTITIES`) of ``corpus``' train split, seed :data:`EVALUATOR_SEED`. ``options``: the
    stopping rule (:data:`STOP_OPTIONS`) and stage-1 settings (``steps``, ...). At the ``paper`` preset its batch
    is the evaluator recipe's 256 (paper E.1: the evaluator uses batch size 256 "for both Stage 1 and Stage 2"),
    not stage 1's 40; the smaller presets keep stage 1's batch (:func:`p3d.train.critics.evaluator_stage1_options`)."""
    from p3d.train.critics import evaluator_stage1_options

    _evaluator_options(options)
    if "batch_size" in (own := evaluator_stage1_options(preset)):
        options.setdefault("batch_size", own["batch_size"])
    return fit("stage1", preset, corpus, Path(runs) / EVALUATOR_STAGE1_DIR, identities=EVALUATOR_IDENTITIES,
               seed=EVALUATOR_SEED, progress=progress, record={"shared_with_critics": evaluator_independence(
                   preset, corpus)}, **options)


def train_evaluator(preset: str, corpus: str | os.PathLike[str], runs: str | os.PathLike[str], *,
                    progress: bool = False, **options: Any) -> Path:
    """The independent PLRS evaluator into ``runs/evaluator``, a pipeline that shares
    nothing with the loss critics (:func:`train_critic`): its own stage 1 (:func:`train_evaluator_stage1`,
    ``runs/stage1_evaluator``) and stage 2 both on the other identity half of ``corpus``' train split
    (:data:`EVALUATOR_IDENTITIES`), with seed :data:`EVALUATOR_SEED` (no critic pipeline's) and the evaluator
    recipe's batch size. The stopping-rule options (:data:`STOP_OPTIONS`) apply to its stage 1 as well. Its
    ``config.json`` records what it shares with the critics (``shared_with_critics``: nothing). ``p3d train
    evaluator`` is its stage 2 alone, on the ``--stage1`` given; the command-line equivalent of this function is
    ``p3d train stage1 --identities half2 --seed 1`` (at ``paper`` also ``--batch-size 256``), then ``p3d train
    evaluator --stage1`` on that run's ``final.pt``."""
    _evaluator_options(options)  # stage 2's seed: the evaluator recipe's, EVALUATOR_SEED
    runs = Path(runs)
    stop = {k: v for k, v in options.items() if k in STOP_OPTIONS}
    stage1 = train_evaluator_stage1(preset, corpus, runs, progress=progress, **stop)
    return fit("evaluator", preset, corpus, runs / EVALUATOR_DIR, stage1=stage1, identities=EVALUATOR_IDENTITIES,
               progress=progress, record={"shared_with_critics": evaluator_independence(preset, corpus)}, **options)
