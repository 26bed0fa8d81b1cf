"""The participant-facing survey page: one self-contained HTML file (inline CSS and JS, no server).

:func:`write_survey` writes ``STUDY_DIR/survey.html``. By default the videos are referenced by
relative paths (``stimuli/vNNNN.mp4``): the whole folder can be zipped, copied to a laptop and opened
with a double click (``file://``), or put on any static web host; opened without its ``stimuli/``
folder, the page says so on the first video that fails to load. With ``single_file`` (``p3d study
make --single-file``) every video is embedded as a ``data:`` URI and the page works on its own; it is
then about 4/3 of the videos' total size (a warning is logged above 50 MB: browsers hold the whole
page in memory and mail services refuse large attachments).

What the page does:

1. asks for the participant code (``P01`` ...; also read from ``?pid=P01`` in the address); the code
   fixes the counterbalancing group and the trial order (the manifest's ``participants``); unknown
   codes are refused;
2. shows the consent text (the manifest's ``consent_text``); the participant ticks "I agree" to go
   on (the time is recorded) or declines (nothing is recorded);
3. shows one practice screen (the manifest's ``practice``, if any), marked "not scored";
4. shows each trial: the videos side by side (A, B, ... in the group's order) without native video
   controls (their overlay would cover the mouth when paused), each with a Play / Replay button below
   it; only one plays at a time. Answering is possible once every video has been watched to the end
   (``require_full_view``). A/B: choose A or B, plus a confidence 1-5 (optional, required or off).
   Rank: give each video a different score, K = most preferred, 1 = least preferred (the paper's
   convention);
5. keeps progress in ``localStorage`` (a reload resumes);
6. at the end shows the answers in ``<pre id="export">`` (JSON) and offers them as downloads
   ``p3d-study_<study>_<participant>.json`` and ``.csv``.

Exported answer (JSON): ``format`` (``p3d-study-responses/1``), ``study_id``, ``manifest_sha256``,
``participant_id``, ``group``, ``started_at``, ``finished_at``, ``consent_given`` (true),
``consent_at``, ``complete``, ``user_agent`` and ``answers``: one object per trial with ``trial_id``,
``position`` (1-based; 0 for the practice screen), ``answer`` (``A``/``B``, or ``A=3;B=1;C=2``),
``chosen`` (stimulus id, A/B), ``ranks`` ({stimulus id: score}, rank), ``confidence``, ``shown_at``,
``answered_at`` (ISO 8601 UTC), ``rt_ms``, ``plays`` (play count per video) and ``practice`` (true
only for the practice answer, trial id ``practice``, which the analysis ignores). The CSV has one row
per answer with the same fields (``ranks`` as ``v0001:3;v0002:1``) and ``consent_given``.

The embedded study data is blinded: stimulus and trial ids only; no condition names, no
attention-check answers (those stay in ``manifest.json``).
"""
from __future__ import annotations

import base64
import html
import json
import logging
import re
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

RESPONSE_FORMAT = "p3d-study-responses/1"
CSV_COLUMNS = ("study_id", "manifest_sha256", "participant_id", "group", "trial_id", "position", "answer", "chosen",
               "ranks", "confidence", "shown_at", "answered_at", "rt_ms")
#: Columns the page writes that older exports lack (read when present).
CSV_OPTIONAL_COLUMNS = ("consent_given",)


#: Above this many bytes of embedded video a single-file page gets a warning: browsers load the whole
#: page into memory before showing it, and mail and many file-sharing services refuse such attachments.
SINGLE_FILE_WARN_BYTES = 50 * 1024 * 1024

VIDEO_ERROR = {
    False: "Video {slot} could not be loaded. This page needs the folder stimuli/ next to survey.html: copy or "
           "unzip the whole study folder, not survey.html alone, and open survey.html from there.",
    True: "Video {slot} could not be played in this browser. Please try a current Chrome, Firefox, Edge or "
          "Safari, or tell the experimenter.",
}


def _data_uri(path: Path) -> str:
    return "data:video/mp4;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def public_data(manifest: dict[str, Any], manifest_sha256: str, *,
                study_dir: str | Path | None = None) -> dict[str, Any]:
    """The blinded study description the page embeds (see the module docstring). With ``study_dir`` the
    videos are embedded as ``data:`` URIs (single-file page) instead of relative ``stimuli/`` paths."""
    stimuli = manifest["stimuli"]
    single = study_dir is not None

    def video(sid: str) -> dict[str, str]:
        file = _data_uri(Path(study_dir) / stimuli[sid]["file"]) if single else stimuli[sid]["file"]
        return {"id": sid, "file": file}

    practice = manifest.get("practice")
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
        "trials": {t["id"]: {"kind": t["kind"], "layouts": t["layouts"], "videos": [video(s) for s in t["stimuli"]]}
                   for t in manifest["trials"]},
        "practice": {"kind": practice["kind"], "layouts": practice["layouts"],
                     "videos": [video(s) for s in practice["stimuli"]]} if practice else None,
        "consent_text": manifest.get("consent_text") or "",
        "single_file": single,
        "video_error": VIDEO_ERROR[single],
    }


def _embed_json(obj: Any) -> str:
    """JSON safe inside ``<script type="application/json">`` (no ``</script>`` or ``<!--`` can appear)."""
    text = json.dumps(obj, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_survey(manifest: dict[str, Any], manifest_sha256: str, *, study_dir: str | Path | None = None) -> str:
    """The survey page as an HTML string (single-file, videos embedded, when ``study_dir`` is given)."""
    data = public_data(manifest, manifest_sha256, study_dir=study_dir)
    size = int(manifest.get("config", {}).get("size", 400))
    values = {"TITLE": html.escape(data["title"]), "VIDEO_WIDTH": str(size), "DATA": _embed_json(data),
              "SCRIPT": _SCRIPT}
    return re.sub(r"@@([A-Z_]+)@@", lambda m: values[m.group(1)], _PAGE)


def write_survey(manifest: dict[str, Any], study_dir: str | Path, *, manifest_sha256: str,
                 single_file: bool = False) -> Path:
    """Write ``study_dir/survey.html`` atomically; returns its path. ``single_file``: embed every video
    (``data:`` URIs, about 4/3 of the videos' size) so the page works on its own; warns above
    :data:`SINGLE_FILE_WARN_BYTES`."""
    from p3d.atomic import write_text

    path = Path(study_dir) / "survey.html"
    text = render_survey(manifest, manifest_sha256, study_dir=study_dir if single_file else None)
    if single_file and len(text) > SINGLE_FILE_WARN_BYTES:
        log.warning("%s: %.0f MB with the videos embedded; large pages load slowly and are refused as mail "
                    "attachments by many services (share the study folder instead)", path, len(text) / 2**20)
    write_text(path, text)
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
  /* no native controls: nothing is drawn over the face (the lips stay visible when paused) */
  video::-webkit-media-controls, video::-webkit-media-controls-overlay-play-button { display: none !important; }
  #consent-text { background: #fff; padding: .75rem 1rem; border-radius: 8px; white-space: pre-line; }
  #practice-banner { background: #fef3c7; padding: .5rem .75rem; border-radius: 6px; text-align: center; }
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
<section id="consent" hidden>
  <h1>Consent</h1>
  <p id="consent-text"></p>
  <p><label><input id="consent-agree" type="checkbox"> I have read the above and agree to take part.</label></p>
  <p><button id="consent-continue" type="button" disabled>Continue</button>
     <button id="consent-decline" type="button">I do not agree</button></p>
</section>
<section id="declined" hidden>
  <h1>Thank you</h1>
  <p>You chose not to take part; nothing was recorded. You can close this page.</p>
</section>
<section id="trial" hidden>
  <p id="practice-banner" hidden>Practice screen: try the buttons and answer as you like. This answer is not
     used; the study starts on the next screen.</p>
  <p id="progress"></p>
  <p id="video-error" class="error" role="alert" hidden></p>
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
                  consentAt: null, practiceDone: false, trial: null, shownAt: null, ended: {}, plays: {} };
  const PRACTICE = "practice";

  const iso = () => new Date().toISOString();
  const storageKey = () => "p3d-study:" + S.study_id + ":" + state.participant.id;
  function save() {
    try {
      localStorage.setItem(storageKey(), JSON.stringify({ pos: state.pos, answers: state.answers,
        startedAt: state.startedAt, finishedAt: state.finishedAt, consentAt: state.consentAt,
        practiceDone: state.practiceDone }));
    } catch (e) { /* private mode or file:// without storage: progress is not kept */ }
  }
  function restore() {
    try { const t = localStorage.getItem(storageKey()); return t ? JSON.parse(t) : null; } catch (e) { return null; }
  }
  function findParticipant(text) {
    const want = String(text || "").trim().toUpperCase();
    return S.participants.find((p) => p.id.toUpperCase() === want) || null;
  }
  function trial() { return state.trial === PRACTICE ? S.practice : S.trials[state.trial]; }
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
    if (saved && saved.consentAt && Array.isArray(saved.answers)) {
      state.pos = saved.pos; state.answers = saved.answers; state.startedAt = saved.startedAt;
      state.finishedAt = saved.finishedAt || null; state.consentAt = saved.consentAt;
      state.practiceDone = !!saved.practiceDone;
    }
    $("welcome").hidden = true;
    if (state.consentAt) { show(); return; }
    $("consent-text").textContent = S.consent_text;
    $("consent").hidden = false;
  }

  function giveConsent() {
    if (!$("consent-agree").checked) return;
    state.consentAt = iso();
    state.startedAt = state.consentAt;
    $("consent").hidden = true;
    save();
    show();
  }

  function decline() {
    $("consent").hidden = true;
    $("declined").hidden = false;
  }

  function el(tag, props, children) {
    const e = document.createElement(tag);
    Object.assign(e, props || {});
    (children || []).forEach((c) => e.append(c));
    return e;
  }

  function show() {
    const order = state.participant.order;
    const practice = !!S.practice && !state.practiceDone;
    if (!practice && state.pos >= order.length) { finish(); return; }
    state.trial = practice ? PRACTICE : order[state.pos];
    state.shownAt = iso(); state.ended = {}; state.plays = {};
    const t = trial();
    const videos = shownVideos();
    $("practice-banner").hidden = !practice;
    $("video-error").hidden = true;
    $("progress").textContent = practice ? "Practice screen (not scored)"
      : "Screen " + (state.pos + 1) + " of " + order.length;
    $("question").textContent = t.question || S.question;
    const box = $("videos");
    box.replaceChildren();
    videos.forEach((v, j) => {
      const L = LETTERS[j];
      // no native controls (their overlay covers the mouth when paused): play/replay buttons below the video
      const vid = el("video", { id: "video-" + L, preload: "auto", controls: false, playsInline: true });
      vid.style.width = "min(" + S.video_width + "px, " + Math.floor(88 / videos.length) + "vw)";
      vid.dataset.slot = L;
      vid.dataset.stimulus = v.id;
      const status = el("span", { id: "status-" + L, className: "status", textContent: "not watched yet" });
      vid.addEventListener("play", () => {
        state.plays[L] = (state.plays[L] || 0) + 1;
        document.querySelectorAll("#videos video").forEach((o) => { if (o !== vid) o.pause(); });
        update();
      });
      vid.addEventListener("ended", () => { state.ended[L] = true; btn.textContent = "\u21BB Replay " + L; update(); });
      vid.addEventListener("error", () => {
        const box = $("video-error");
        box.textContent = S.video_error.replace("{slot}", L);
        box.hidden = false;
        status.textContent = "could not be loaded";
        status.className = "status error";
      });
      vid.src = v.file;
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
      if (s && s.className !== "status error") { s.textContent = watched(L) ? "watched \u2713" : "not watched yet"; s.className = "status" + (watched(L) ? " done" : ""); }
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
    const practice = state.trial === PRACTICE;
    state.answers.push({ trial_id: state.trial, position: practice ? 0 : state.pos + 1, answer: a.answer,
      chosen: a.chosen, ranks: a.ranks, confidence: a.confidence, shown_at: state.shownAt,
      answered_at: answeredAt, rt_ms: Date.parse(answeredAt) - Date.parse(state.shownAt), plays: state.plays,
      practice: practice });
    document.querySelectorAll("#videos video").forEach((v) => v.pause());
    if (practice) { state.practiceDone = true; save(); show(); return; }
    state.pos += 1;
    if (state.pos >= state.participant.order.length) state.finishedAt = iso();
    save();
    show();
  }

  function exportObject() {
    return { format: S.response_format, study_id: S.study_id, manifest_sha256: S.manifest_sha256,
      participant_id: state.participant.id, group: state.participant.group, started_at: state.startedAt,
      finished_at: state.finishedAt, consent_given: !!state.consentAt, consent_at: state.consentAt,
      complete: state.answers.filter((a) => !a.practice).length === state.participant.order.length,
      user_agent: navigator.userAgent, answers: state.answers };
  }

  function csvCell(x) {
    const s = x === null || x === undefined ? "" : String(x);
    return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }
  function toCSV(obj) {
    const cols = ["study_id", "manifest_sha256", "participant_id", "group", "trial_id", "position", "answer",
                  "chosen", "ranks", "confidence", "shown_at", "answered_at", "rt_ms", "consent_given"];
    const lines = [cols.join(",")];
    obj.answers.forEach((a) => {
      const ranks = a.ranks ? Object.entries(a.ranks).map(([k, v]) => k + ":" + v).join(";") : "";
      const row = { study_id: obj.study_id, manifest_sha256: obj.manifest_sha256, participant_id: obj.participant_id,
                    group: obj.group, ...a, ranks: ranks, consent_given: obj.consent_given };
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
  $("consent-agree").addEventListener("change", () => { $("consent-continue").disabled = !$("consent-agree").checked; });
  $("consent-continue").addEventListener("click", giveConsent);
  $("consent-decline").addEventListener("click", decline);
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
