"""The participant-facing survey page: one self-contained HTML file (inline CSS and JS, no server).

:func:`write_survey` writes ``STUDY_DIR/survey.html`` next to ``stimuli/``; the videos are referenced
by relative paths, so the folder can be zipped, copied to a laptop and opened with a double click
(``file://``), or put on any static web host.

What the page does:

1. asks for the participant code (``P01`` ...; also read from ``?pid=P01`` in the address); the code
   fixes the counterbalancing group and the trial order (the manifest's ``participants``); unknown
   codes are refused;
2. shows each trial: the videos side by side (A, B, ... in the group's order), each with a "Play"
   button and native controls; only one plays at a time. Answering is possible once every video has
   been watched to the end (``require_full_view``). A/B: choose A or B, plus a confidence 1-5
   (optional, required or off). Rank: give each video a different score, K = most preferred,
   1 = least preferred (the paper's convention);
3. keeps progress in ``localStorage`` (a reload resumes);
4. at the end shows the answers in ``<pre id="export">`` (JSON) and offers them as downloads
   ``p3d-study_<study>_<participant>.json`` and ``.csv``.

Exported answer (JSON): ``format`` (``p3d-study-responses/1``), ``study_id``, ``manifest_sha256``,
``participant_id``, ``group``, ``started_at``, ``finished_at``, ``complete``, ``user_agent`` and
``answers``: one object per trial with ``trial_id``, ``position`` (1-based), ``answer`` (``A``/``B``,
or ``A=3;B=1;C=2``), ``chosen`` (stimulus id, A/B), ``ranks`` ({stimulus id: score}, rank),
``confidence``, ``shown_at``, ``answered_at`` (ISO 8601 UTC), ``rt_ms`` and ``plays`` (play count
per video). The CSV has one row per answer with the same fields (``ranks`` as ``v0001:3;v0002:1``).

The embedded study data is blinded: stimulus and trial ids only; no condition names, no
attention-check answers (those stay in ``manifest.json``).
"""
from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

RESPONSE_FORMAT = "p3d-study-responses/1"
CSV_COLUMNS = ("study_id", "manifest_sha256", "participant_id", "group", "trial_id", "position", "answer", "chosen",
               "ranks", "confidence", "shown_at", "answered_at", "rt_ms")
#: Columns the page writes that older exports lack (read when present).
CSV_OPTIONAL_COLUMNS = ("consent_given",)


def public_data(manifest: dict[str, Any], manifest_sha256: str) -> dict[str, Any]:
    """The blinded study description the page embeds (see the module docstring)."""
    stimuli = manifest["stimuli"]
    return {
        "format": "p3d-survey/1",
        "response_format": RESPONSE_FORMAT,
        "study_id": manifest["study_id"],
        "manifest_sha256": manifest_sha256,
        "title": manifest.get("title", "Study"),
        "question": manifest["question"],
        "design": manifest["design"],
        "confidence": manifest.get("confidence", "off"),
        "require_full_view": bool(manifest.get("require_full_view", True)),
        "video_width": int(manifest.get("config", {}).get("size", 400)),
        "participants": [{"id": p["id"], "group": p["group"], "order": p["order"]} for p in manifest["participants"]],
        "trials": {t["id"]: {"kind": t["kind"], "layouts": t["layouts"],
                             "videos": [{"id": s, "file": stimuli[s]["file"]} for s in t["stimuli"]]}
                   for t in manifest["trials"]},
    }


def _embed_json(obj: Any) -> str:
    """JSON safe inside ``<script type="application/json">`` (no ``</script>`` or ``<!--`` can appear)."""
    text = json.dumps(obj, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_survey(manifest: dict[str, Any], manifest_sha256: str) -> str:
    """The survey page as an HTML string."""
    data = public_data(manifest, manifest_sha256)
    size = int(manifest.get("config", {}).get("size", 400))
    values = {"TITLE": html.escape(data["title"]), "VIDEO_WIDTH": str(size), "DATA": _embed_json(data),
              "SCRIPT": _SCRIPT}
    return re.sub(r"@@([A-Z_]+)@@", lambda m: values[m.group(1)], _PAGE)


def write_survey(manifest: dict[str, Any], study_dir: str | Path, *, manifest_sha256: str) -> Path:
    """Write ``study_dir/survey.html`` atomically; returns its path."""
    from p3d.atomic import write_text

    path = Path(study_dir) / "survey.html"
    write_text(path, render_survey(manifest, manifest_sha256))
    return path


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>@@TITLE@@</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 0; background: #f6f6f4; color: #222; }
  main { max-width: 1100px; margin: 0 auto; padding: 1.5rem; }
  h1 { font-size: 1.5rem; }
  #videos { display: flex; flex-wrap: wrap; gap: 1.5rem; justify-content: center; margin: 1rem 0; }
  figure.stimulus { margin: 0; text-align: center; background: #fff; padding: .75rem; border-radius: 8px;
                    box-shadow: 0 1px 3px rgba(0,0,0,.15); }
  figure.stimulus video { width: min(@@VIDEO_WIDTH@@px, 42vw); height: auto; display: block; background: #fff; }
  figcaption { font-weight: 600; font-size: 1.2rem; margin-bottom: .4rem; }
  .status { display: block; font-size: .9rem; color: #666; margin-top: .3rem; }
  .status.done { color: #1a7f37; }
  #question { font-size: 1.1rem; font-weight: 500; }
  #answer, #confidence { margin: 1rem 0; display: flex; gap: 1.5rem; justify-content: center; flex-wrap: wrap; }
  #answer label, #confidence label { font-size: 1.05rem; }
  button { font-size: 1rem; padding: .45rem 1rem; margin-top: .4rem; cursor: pointer; }
  button:disabled { cursor: not-allowed; }
  #hint { color: #9a3412; min-height: 1.3em; text-align: center; }
  .error { color: #b91c1c; }
  .nav { text-align: center; }
  pre#export { background: #fff; padding: .75rem; max-height: 18rem; overflow: auto; font-size: .8rem; }
</style>
</head>
<body>
<main>
<section id="welcome">
  <h1>@@TITLE@@</h1>
  <p>You will see short videos of a 3D talking face with speech. For each screen, play every video to the end
     (with sound: please use headphones), then answer the question. There are no right or wrong answers,
     except a few obvious control screens. Please answer spontaneously.</p>
  <p><label>Participant code <input id="pid" autocomplete="off" size="8"></label>
     <button id="start" type="button">Start</button></p>
  <p id="pid-error" class="error"></p>
</section>
<section id="trial" hidden>
  <p id="progress"></p>
  <p id="question"></p>
  <div id="videos"></div>
  <div id="answer"></div>
  <div id="confidence"></div>
  <p id="hint"></p>
  <p class="nav"><button id="next" type="button" disabled>Next</button></p>
</section>
<section id="done" hidden>
  <h1>Thank you!</h1>
  <p>Please download your answers and send the file to the experimenter.</p>
  <p><button id="download-json" type="button">Download answers (JSON)</button>
     <button id="download-csv" type="button">Download answers (CSV)</button></p>
  <pre id="export"></pre>
</section>
</main>
<script type="application/json" id="study-data">@@DATA@@</script>
<script>
@@SCRIPT@@
</script>
</body>
</html>
"""

_SCRIPT = r"""
"use strict";
(function () {
  const S = JSON.parse(document.getElementById("study-data").textContent);
  const LETTERS = "ABCDEFGH";
  const $ = (id) => document.getElementById(id);
  const state = { participant: null, pos: 0, answers: [], startedAt: null, finishedAt: null,
                  trial: null, shownAt: null, ended: {}, plays: {} };

  const iso = () => new Date().toISOString();
  const storageKey = () => "p3d-study:" + S.study_id + ":" + state.participant.id;
  function save() {
    try {
      localStorage.setItem(storageKey(), JSON.stringify({ pos: state.pos, answers: state.answers,
        startedAt: state.startedAt, finishedAt: state.finishedAt }));
    } catch (e) { /* private mode or file:// without storage: progress is not kept */ }
  }
  function restore() {
    try { const t = localStorage.getItem(storageKey()); return t ? JSON.parse(t) : null; } catch (e) { return null; }
  }
  function findParticipant(text) {
    const want = String(text || "").trim().toUpperCase();
    return S.participants.find((p) => p.id.toUpperCase() === want) || null;
  }
  function trial() { return S.trials[state.trial]; }
  function shownVideos() {
    const t = trial();
    return t.layouts[state.participant.group].map((i) => t.videos[i]);
  }

  function start() {
    const p = findParticipant($("pid").value);
    if (!p) {
      $("pid-error").textContent = "Unknown participant code. Please use the code the experimenter gave you.";
      return;
    }
    state.participant = p;
    const saved = restore();
    if (saved && Array.isArray(saved.answers) && saved.answers.length) {
      state.pos = saved.pos; state.answers = saved.answers;
      state.startedAt = saved.startedAt; state.finishedAt = saved.finishedAt || null;
    } else {
      state.startedAt = iso();
    }
    $("welcome").hidden = true;
    show();
  }

  function el(tag, props, children) {
    const e = document.createElement(tag);
    Object.assign(e, props || {});
    (children || []).forEach((c) => e.append(c));
    return e;
  }

  function show() {
    const order = state.participant.order;
    if (state.pos >= order.length) { finish(); return; }
    state.trial = order[state.pos];
    state.shownAt = iso(); state.ended = {}; state.plays = {};
    const t = trial();
    const videos = shownVideos();
    $("progress").textContent = "Screen " + (state.pos + 1) + " of " + order.length;
    $("question").textContent = t.question || S.question;
    const box = $("videos");
    box.replaceChildren();
    videos.forEach((v, j) => {
      const L = LETTERS[j];
      const vid = el("video", { id: "video-" + L, src: v.file, preload: "auto", controls: true, playsInline: true });
      vid.style.width = "min(" + S.video_width + "px, " + Math.floor(88 / videos.length) + "vw)";
      vid.dataset.slot = L;
      vid.dataset.stimulus = v.id;
      const status = el("span", { id: "status-" + L, className: "status", textContent: "not watched yet" });
      vid.addEventListener("play", () => {
        state.plays[L] = (state.plays[L] || 0) + 1;
        document.querySelectorAll("#videos video").forEach((o) => { if (o !== vid) o.pause(); });
        update();
      });
      vid.addEventListener("ended", () => { state.ended[L] = true; update(); });
      const btn = el("button", { id: "play-" + L, type: "button", textContent: "\u25B6 Play " + L });
      btn.addEventListener("click", () => { vid.currentTime = 0; vid.play().catch(() => {}); });
      box.append(el("figure", { className: "stimulus" },
        [el("figcaption", { textContent: "Video " + L }), vid, btn, status]));
    });
    const ans = $("answer");
    ans.replaceChildren();
    const conf = $("confidence");
    conf.replaceChildren();
    if (t.kind === "ab") {
      videos.forEach((v, j) => {
        const L = LETTERS[j];
        const input = el("input", { type: "radio", name: "choice", value: L, id: "choice-" + L });
        input.addEventListener("change", update);
        ans.append(el("label", {}, [input, " Video " + L]));
      });
      if (S.confidence !== "off") {
        conf.append(el("span", { textContent: "How sure are you?" + (S.confidence === "optional" ? " (optional)" : "") }));
        for (let c = 1; c <= 5; c++) {
          const input = el("input", { type: "radio", name: "confidence", value: String(c), id: "confidence-" + c });
          input.addEventListener("change", update);
          const text = c === 1 ? " 1 (guessing)" : c === 5 ? " 5 (certain)" : " " + c;
          conf.append(el("label", {}, [input, text]));
        }
      }
    } else {
      const K = videos.length;
      videos.forEach((v, j) => {
        const L = LETTERS[j];
        const sel = el("select", { id: "rank-" + L });
        sel.append(el("option", { value: "", textContent: "score" }));
        for (let r = 1; r <= K; r++) sel.append(el("option", { value: String(r), textContent: String(r) }));
        sel.addEventListener("change", update);
        ans.append(el("label", {}, ["Video " + L + " ", sel]));
      });
      conf.append(el("span", { textContent: K + " = most preferred, 1 = least preferred; give each video a different score." }));
    }
    $("trial").hidden = false;
    update();
    window.scrollTo(0, 0);
  }

  function currentAnswer() {
    const t = trial();
    const videos = shownVideos();
    if (t.kind === "ab") {
      const c = document.querySelector('input[name="choice"]:checked');
      if (!c) return null;
      const conf = document.querySelector('input[name="confidence"]:checked');
      return { answer: c.value, chosen: videos[LETTERS.indexOf(c.value)].id, ranks: null,
               confidence: conf ? Number(conf.value) : null };
    }
    const scores = videos.map((v, j) => Number($("rank-" + LETTERS[j]).value || 0));
    if (scores.some((s) => s < 1) || new Set(scores).size !== videos.length) return null;
    const ranks = {};
    videos.forEach((v, j) => { ranks[v.id] = scores[j]; });
    return { answer: videos.map((v, j) => LETTERS[j] + "=" + scores[j]).join(";"), chosen: null, ranks: ranks,
             confidence: null };
  }

  function watched(L) { return S.require_full_view ? !!state.ended[L] : (state.plays[L] || 0) > 0; }

  function update() {
    const videos = shownVideos();
    const slots = videos.map((v, j) => LETTERS[j]);
    slots.forEach((L) => {
      const s = $("status-" + L);
      if (s) { s.textContent = watched(L) ? "watched \u2713" : "not watched yet"; s.className = "status" + (watched(L) ? " done" : ""); }
    });
    const all = slots.every(watched);
    const a = currentAnswer();
    const confOk = trial().kind !== "ab" || S.confidence !== "required" || (a && a.confidence !== null);
    $("next").disabled = !(all && a && confOk);
    $("hint").textContent = !all ? "Please watch every video to the end before answering."
      : !a ? (trial().kind === "ab" ? "Please choose A or B." : "Please give each video a different score.")
      : !confOk ? "Please say how sure you are." : "";
  }

  function submit() {
    if ($("next").disabled) return;
    const a = currentAnswer();
    const answeredAt = iso();
    state.answers.push({ trial_id: state.trial, position: state.pos + 1, answer: a.answer, chosen: a.chosen,
      ranks: a.ranks, confidence: a.confidence, shown_at: state.shownAt, answered_at: answeredAt,
      rt_ms: Date.parse(answeredAt) - Date.parse(state.shownAt), plays: state.plays });
    document.querySelectorAll("#videos video").forEach((v) => v.pause());
    state.pos += 1;
    if (state.pos >= state.participant.order.length) state.finishedAt = iso();
    save();
    show();
  }

  function exportObject() {
    return { format: S.response_format, study_id: S.study_id, manifest_sha256: S.manifest_sha256,
      participant_id: state.participant.id, group: state.participant.group, started_at: state.startedAt,
      finished_at: state.finishedAt, complete: state.answers.length === state.participant.order.length,
      user_agent: navigator.userAgent, answers: state.answers };
  }

  function csvCell(x) {
    const s = x === null || x === undefined ? "" : String(x);
    return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }
  function toCSV(obj) {
    const cols = ["study_id", "manifest_sha256", "participant_id", "group", "trial_id", "position", "answer",
                  "chosen", "ranks", "confidence", "shown_at", "answered_at", "rt_ms"];
    const lines = [cols.join(",")];
    obj.answers.forEach((a) => {
      const ranks = a.ranks ? Object.entries(a.ranks).map(([k, v]) => k + ":" + v).join(";") : "";
      const row = { study_id: obj.study_id, manifest_sha256: obj.manifest_sha256, participant_id: obj.participant_id,
                    group: obj.group, ...a, ranks: ranks };
      lines.push(cols.map((c) => csvCell(row[c])).join(","));
    });
    return lines.join("\n") + "\n";
  }

  function download(name, text, type) {
    const url = URL.createObjectURL(new Blob([text], { type: type }));
    const a = el("a", { href: url, download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 5000);
  }
  const baseName = () => "p3d-study_" + S.study_id + "_" + state.participant.id;

  function finish() {
    if (!state.finishedAt) { state.finishedAt = iso(); save(); }
    $("trial").hidden = true;
    $("done").hidden = false;
    $("export").textContent = JSON.stringify(exportObject(), null, 1);
  }

  $("start").addEventListener("click", start);
  $("pid").addEventListener("keydown", (e) => { if (e.key === "Enter") start(); });
  $("next").addEventListener("click", submit);
  $("download-json").addEventListener("click", () =>
    download(baseName() + ".json", JSON.stringify(exportObject(), null, 1) + "\n", "application/json"));
  $("download-csv").addEventListener("click", () => download(baseName() + ".csv", toCSV(exportObject()), "text/csv"));
  const pid = new URLSearchParams(window.location.search).get("pid");
  if (pid) $("pid").value = pid;
  window.p3dStudy = { state: state, exportObject: exportObject, toCSV: toCSV };
})();
"""
