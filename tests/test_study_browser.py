"""The survey page end to end in headless Chromium, as a participant would use it: load, enter the code,
agree to the consent text, do the practice screen, play every video, answer, export (the <pre id="export"> text and the JSON/CSV downloads), then analyse
the downloaded file with ``p3d study analyze``.

Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install -y chromium chromium-driver``); skipped
(with the reason) when they are missing. ``selenium`` is pinned in the test extra, so it is imported plainly: a
missing one is an error, not a skip. The answers given here are
FIXTURE answers typed by the test, not data from people.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
import selenium  # noqa: F401

from p3d.study import analyze as A
from p3d.study.make import load_manifest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


def _skip_reason() -> str | None:
    if CHROMIUM is None or DRIVER is None:
        return "chromium and chromedriver not installed (apt-get install -y chromium chromium-driver)"
    return None


pytestmark = [pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or ""),
              pytest.mark.slow]  # each survey end to end: 20-25 s


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from test_study import write_study_data

    return write_study_data(tmp_path_factory.mktemp("browser_data"))


@pytest.fixture()
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--mute-audio",
                "--autoplay-policy=no-user-gesture-required", "--allow-file-access-from-files",
                "--window-size=1200,900"):
        opts.add_argument(arg)
    opts.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                           "download.prompt_for_download": False})
    driver = webdriver.Chrome(options=opts, service=Service(DRIVER))
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.set_page_load_timeout(60)
    driver.downloads = downloads
    yield driver
    driver.quit()


def _wait(predicate, timeout: float = 30.0, what: str = "condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _watch_all(driver):
    """Press each video's Play button and wait until the page marks it watched (played to the end)."""
    from selenium.webdriver.common.by import By

    videos = driver.find_elements(By.CSS_SELECTOR, "#videos video")
    for v in videos:
        slot = v.get_attribute("data-slot")
        driver.find_element(By.ID, f"play-{slot}").click()
        status = driver.find_element(By.ID, f"status-{slot}")
        _wait(lambda s=status: s.text == "watched \u2713", what=f"video {slot} to end")
    return {v.get_attribute("data-slot"): v.get_attribute("data-stimulus") for v in videos}


def _answer_any(driver):
    """Some valid answer on the current screen (the practice screen's answer is not analysed)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    choices = driver.find_elements(By.CSS_SELECTOR, 'input[name="choice"]')
    if choices:
        choices[0].click()
        return
    for n, sel in enumerate(driver.find_elements(By.CSS_SELECTOR, "#answer select"), start=1):
        Select(sel).select_by_value(str(n))


def _open(driver, study: Path, pid: str):
    """Enter the code, agree to the consent text and do the practice screen: ends on the first trial."""
    from selenium.webdriver.common.by import By

    driver.get((study / "survey.html").as_uri() + f"?pid={pid}")
    assert driver.find_element(By.ID, "pid").get_attribute("value") == pid  # read from the address
    driver.find_element(By.ID, "start").click()
    _wait(lambda: driver.find_element(By.ID, "consent").is_displayed(), what="the consent screen")
    assert not driver.find_element(By.ID, "trial").is_displayed()  # no trial before consent
    assert not driver.find_element(By.ID, "consent-continue").is_enabled()
    driver.find_element(By.ID, "consent-agree").click()
    driver.find_element(By.ID, "consent-continue").click()
    _wait(lambda: driver.find_element(By.ID, "practice-banner").is_displayed(), what="the practice screen")
    assert driver.find_element(By.ID, "progress").text == "Practice screen (not scored)"
    for v in driver.find_elements(By.CSS_SELECTOR, "#videos video"):  # no native controls over the mouth
        assert v.get_attribute("controls") is None
    _watch_all(driver)
    _answer_any(driver)
    driver.find_element(By.ID, "next").click()
    _wait(lambda: not driver.find_element(By.ID, "practice-banner").is_displayed(), what="the first trial")
    assert driver.find_element(By.ID, "progress").text.startswith("Screen 1 of ")


def test_missing_stimuli_folder_is_named_on_the_page(browser, data, tmp_path):
    """survey.html copied on its own: the first video that fails to load says the stimuli/ folder is missing."""
    from selenium.webdriver.common.by import By
    from test_study import make_ab_study

    study = tmp_path / "study"
    make_ab_study(data, study, participants=2)
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(study / "survey.html", alone / "survey.html")
    browser.get((alone / "survey.html").as_uri() + "?pid=P01")
    browser.find_element(By.ID, "start").click()
    browser.find_element(By.ID, "consent-agree").click()
    browser.find_element(By.ID, "consent-continue").click()
    box = browser.find_element(By.ID, "video-error")
    _wait(lambda: box.is_displayed(), what="the missing-video message")
    assert "stimuli/" in box.text


def _download(driver, button: str, suffix: str) -> Path:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, button).click()

    def finished():
        # the final name can exist, empty, before Chrome has written the contents (it writes
        # ``<name>.crdownload`` and renames it): on a loaded machine the name alone was read as an empty JSON
        if any(driver.downloads.glob("*.crdownload")):
            return None
        return next((p for p in driver.downloads.glob(f"*{suffix}") if p.stat().st_size > 0), None)

    return _wait(finished, what=f"the {suffix} download")


def test_ab_survey_end_to_end(browser, data, tmp_path):
    from selenium.webdriver.common.by import By
    from test_study import make_ab_study

    study = tmp_path / "study"
    make_ab_study(data, study, participants=4)
    manifest, sha = load_manifest(study)
    trials = {t["id"]: t for t in manifest["trials"]}

    # an unknown code is refused
    browser.get((study / "survey.html").as_uri())
    browser.find_element(By.ID, "pid").send_keys("P77")
    browser.find_element(By.ID, "start").click()
    assert "Unknown participant code" in browser.find_element(By.ID, "pid-error").text
    assert not browser.find_element(By.ID, "trial").is_displayed()

    _open(browser, study, "P02")
    person = next(p for p in manifest["participants"] if p["id"] == "P02")
    expected = {}
    for n, tid in enumerate(person["order"]):
        assert browser.find_element(By.ID, "progress").text == f"Screen {n + 1} of {len(person['order'])}"
        nxt = browser.find_element(By.ID, "next")
        assert not nxt.is_enabled()  # nothing watched yet
        shown = _watch_all(browser)
        t = trials[tid]
        assert [shown["A"], shown["B"]] == [t["stimuli"][i] for i in t["layouts"][person["group"]]]
        assert not nxt.is_enabled()  # watched, not answered
        # FIXTURE answer: the right video on checks, otherwise the 'ours' condition (the pair's second)
        want = t["correct"] if t["attention_check"] else t["stimuli"][1]
        slot = "A" if shown["A"] == want else "B"
        browser.find_element(By.ID, f"choice-{slot}").click()
        browser.find_element(By.ID, "confidence-4").click()
        expected[tid] = want
        assert nxt.is_enabled()
        nxt.click()
    _wait(lambda: browser.find_element(By.ID, "done").is_displayed(), what="the end page")

    shown_export = json.loads(browser.find_element(By.ID, "export").text)
    path = _download(browser, "download-json", ".json")
    exported = json.loads(path.read_text())
    assert exported == shown_export
    assert path.name == f"p3d-study_{manifest['study_id']}_P02.json"
    assert exported["manifest_sha256"] == sha and exported["participant_id"] == "P02" and exported["complete"]
    assert exported["consent_given"] is True and exported["consent_at"]
    practice, *real = exported["answers"]
    assert practice["trial_id"] == "practice" and practice["practice"] is True and practice["position"] == 0
    assert [a["trial_id"] for a in real] == person["order"]
    for a in real:
        assert a["chosen"] == expected[a["trial_id"]] and a["confidence"] == 4
        assert a["shown_at"] <= a["answered_at"] and a["rt_ms"] >= 0 and a["plays"] == {"A": 1, "B": 1}
    csv_path = _download(browser, "download-csv", ".csv")
    import pandas as pd

    table = pd.read_csv(csv_path)
    assert list(table["trial_id"]) == ["practice", *person["order"]] and set(table["participant_id"]) == {"P02"}
    assert set(table["consent_given"]) == {True}

    # the downloaded files go to the study's responses/ and are analysed
    shutil.copy(path, study / "responses" / path.name)
    res = A.analyze(study, n_resamples=100)
    assert res.summary["included"] == 1 and res.summary["answers"] == len(person["order"])
    row = res.tables["ab_preferences"].iloc[0]
    assert row.responses == 2 and row.prefer_b_pct == pytest.approx(100.0)
    res_csv = A.analyze(study, [csv_path], n_resamples=100)  # the CSV export reads the same
    assert res_csv.tables["ab_preferences"].iloc[0].prefer_b_pct == pytest.approx(100.0)

    # a reload resumes at the end page with the same answers (localStorage)
    browser.get((study / "survey.html").as_uri() + "?pid=P02")
    browser.find_element(By.ID, "start").click()
    _wait(lambda: browser.find_element(By.ID, "done").is_displayed(), what="the resumed end page")
    assert json.loads(browser.find_element(By.ID, "export").text)["answers"] == exported["answers"]


def test_rank_survey_end_to_end(browser, data, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    from test_study import make_rank_study

    study = tmp_path / "study"
    make_rank_study(data, study)
    manifest, sha = load_manifest(study)
    stim, trials = manifest["stimuli"], {t["id"]: t for t in manifest["trials"]}
    _open(browser, study, "P03")
    person = next(p for p in manifest["participants"] if p["id"] == "P03")
    for tid in person["order"]:
        t = trials[tid]
        shown = _watch_all(browser)
        assert len(shown) == 3
        nxt = browser.find_element(By.ID, "next")
        Select(browser.find_element(By.ID, "rank-A")).select_by_value("1")
        Select(browser.find_element(By.ID, "rank-B")).select_by_value("1")
        Select(browser.find_element(By.ID, "rank-C")).select_by_value("2")
        assert not nxt.is_enabled()  # two videos share a score
        # FIXTURE answer: the GT video highest on the check, otherwise the higher the lip level the better
        for slot, sid in shown.items():
            score = (3 if sid == t["correct"] else 1) if t["attention_check"] else stim[sid]["lip_level"]
            Select(browser.find_element(By.ID, f"rank-{slot}")).select_by_value(str(score))
        if t["attention_check"]:
            rest = [slot for slot, sid in shown.items() if sid != t["correct"]]
            Select(browser.find_element(By.ID, f"rank-{rest[1]}")).select_by_value("2")
        assert nxt.is_enabled()
        nxt.click()
    _wait(lambda: browser.find_element(By.ID, "done").is_displayed(), what="the end page")
    path = _download(browser, "download-json", ".json")
    exported = json.loads(path.read_text())
    assert exported["group"] == person["group"] and len(exported["answers"]) == len(person["order"]) + 1
    shutil.copy(path, study / "responses" / path.name)
    res = A.analyze(study, n_resamples=100)
    assert res.summary["included"] == 1
    cells = res.tables["rank_intensity"]
    assert list(cells["mean_score"]) == [float(level) for level in cells["lip_level"]]
    assert res.tables["rank_intensity_matched"].iloc[0].top_choice_matches_speech == 1  # speech level 3 only


def test_versions_recorded():
    """Not a check of behaviour: records the browser and driver versions in the test log (-rA)."""
    import subprocess

    import selenium

    chromium = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout.strip()
    driver = subprocess.run([DRIVER, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"{chromium}; {driver}; selenium {selenium.__version__}; {os.uname().sysname}")
    assert chromium.split()[1].split(".")[0] == driver.split()[1].split(".")[0]  # major versions must agree
