"""The coil pages in a real headless browser (Debian chromium + chromedriver via selenium): the
coil page draws every defect of a known coil, zooming fetches only the visible range, a click
shows a defect's crop, and the live page advances while a background thread writes a coil.
Without chromium + chromedriver they skip with the reason, and fail under CI=true."""

from __future__ import annotations

import json
import os
import threading
import urllib.request
from pathlib import Path

import pytest

from steelscan.coils.records import CoilInfo, DefectRecord, LineStatusRecord, UninspectedRecord
from steelscan.coils.store import CoilStore
from steelscan.service.app import create_app
from test_service_browser import browser, serving  # noqa: F401  (the browser fixture)

pytestmark = pytest.mark.browser


def wait(driver, condition, timeout: float = 30):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition)


def shown(driver) -> tuple[int, int]:
    """Defects drawn on the top and bottom maps."""
    return tuple(int(driver.find_element("id", f"map-{s}").get_attribute("data-shown") or -1)
                 for s in ("top", "bottom"))


def defect_urls(driver) -> list[str]:
    """The /defects requests the page has issued (the browser's own resource timing)."""
    return driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)"
                                 ".filter(n => n.includes('/defects?'))")


def screenshot(driver, tmp_path: Path, name: str) -> None:
    shot = Path(os.environ.get("STEELSCAN_SCREENSHOT_DIR", tmp_path)) / name
    driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000


def test_coil_page_draws_every_defect_and_shows_a_crop(browser, coil_db, tmp_path):  # noqa: F811
    from selenium.webdriver.common.action_chains import ActionChains

    with serving(create_app(db_path=coil_db)) as url:
        browser.get(url + "/coils")
        wait(browser, lambda d: len(d.find_elements("css selector", "#coils tbody tr")) == 2)
        browser.find_element("link text", "C1").click()
        wait(browser, lambda d: shown(d) == (20, 20))
        assert browser.find_element("id", "n-defects").text == "40"
        assert "largest" not in browser.find_element("id", "count-top").text   # nothing truncated
        # click the top map where a defect with a crop is drawn
        d, box = browser.execute_script(
            "const m = coilMap, cv = document.getElementById('map-top');"
            "const d = m.inView('top').find(x => x.has_crop);"
            "return [d, m.defectBox(d, cv.clientWidth, cv.clientHeight)];")
        canvas = browser.find_element("id", "map-top")
        rect = canvas.rect
        ActionChains(browser).move_to_element_with_offset(
            canvas, int(box[0] + box[2] / 2 - rect["width"] / 2), int(box[1] + box[3] / 2 - rect["height"] / 2)
        ).click().perform()
        wait(browser, lambda b: b.execute_script("const i = document.getElementById('crop');"
                                                 "return i.complete && i.naturalWidth") == 48)
        fields = browser.find_element("id", "fields").text
        assert str(d["id"]) in fields and d["class_name"] in fields and f"{d['start_m']:.3f}" in fields
        screenshot(browser, tmp_path, "coil_page.png")


def test_zooming_fetches_only_the_visible_range(browser, coil_db):  # noqa: F811
    with serving(create_app(db_path=coil_db)) as url:
        browser.get(url + "/coils/C1")
        wait(browser, lambda d: shown(d) == (20, 20))
        before = len(defect_urls(browser))
        assert before == 2 and all("from_m=0.000&to_m=20.000" in u for u in defect_urls(browser))
        for field, value in (("from", "4"), ("to", "9")):
            box = browser.find_element("id", field)
            box.clear()
            box.send_keys(value)
        browser.find_element("id", "go").click()
        wait(browser, lambda d: len(defect_urls(d)) == before + 2)
        new = defect_urls(browser)[before:]
        assert sorted(u.split("surface=")[1].split("&")[0] for u in new) == ["bottom", "top"]
        assert all("from_m=4.000&to_m=9.000" in u for u in new), new
        want = []
        for s in ("top", "bottom"):
            with urllib.request.urlopen(f"{url}/v1/coils/C1/defects?surface={s}&from_m=4&to_m=9") as r:
                want.append(len(json.load(r)["items"]))
        wait(browser, lambda d: shown(d) == tuple(want))
        assert sum(want) < 40
        # the mouse wheel over the map zooms in around the pointer: the next requests ask for less
        before = len(defect_urls(browser))
        browser.execute_script("document.getElementById('map-top').dispatchEvent(new WheelEvent('wheel', "
                               "{deltaY: -100, clientX: document.getElementById('map-top').getBoundingClientRect()"
                               ".left + 10, bubbles: true, cancelable: true}))")
        wait(browser, lambda d: len(defect_urls(d)) == before + 2)
        for u in defect_urls(browser)[before:]:
            a, b = (float(u.split(f"{k}=")[1].split("&")[0]) for k in ("from_m", "to_m"))
            assert 4 <= a < b <= 9 and b - a == pytest.approx(5 / 1.4, abs=2e-3), u


def test_live_page_advances_while_a_coil_is_written(browser, tmp_path):  # noqa: F811
    """A background thread writes coil LIVE-1 step by step (defects further along each time, a
    published runner status from the second step, a `behind` gap at the end); the live page shows
    each step's position, count, frames/s and lag, and the skipped metres."""
    db = tmp_path / "live.db"
    steps = [4.0, 8.0, 12.0, 16.0]
    seen = [threading.Event() for _ in steps]
    failures: list[BaseException] = []

    def line() -> None:
        try:
            with CoilStore(db) as store:
                store.upsert_coil(CoilInfo("LIVE-1", line_id="L2", grade="S355", width_mm=1250.0))
                for i, end in enumerate(steps):
                    store.add_defects([DefectRecord("LIVE-1", s, f"cam-{s}", 1 + i % 4, "pits", 0.9, end - 0.5,
                                                    end, 100.0 + 80 * i, 140.0 + 80 * i, 500.0, 40.0, 14000.0)
                                       for s in ("top", "bottom")])
                    if i == len(steps) - 1:
                        store.add_uninspected([UninspectedRecord("LIVE-1", "top", "cam-top", end, end + 1.5,
                                                                 "behind")])
                    if i >= 1:   # a runner that publishes its status (from the second step on)
                        store.publish_status(LineStatusRecord("cam-top", "LIVE-1", "top", end, 40 * (i + 1), 25.0 + i,
                                                              0.5 * i, 0.0))
                    store.flush()
                    if not seen[i].wait(30):
                        raise TimeoutError(f"the page never showed step {i}")
        except BaseException as e:   # reported by the test below
            failures.append(e)

    CoilStore(db).close()   # the schema exists before the server opens it
    with serving(create_app(db_path=db)) as url:
        browser.get(url + "/live")
        writer = threading.Thread(target=line, daemon=True)
        writer.start()
        positions = []
        for i, end in enumerate(steps):
            reached = end + 1.5 if i == len(steps) - 1 else end
            wait(browser, lambda d: d.find_element("id", "pos-top").text == f"{reached:.1f}")
            positions.append(float(browser.find_element("id", "pos-top").text))
            assert browser.find_element("id", "coil-id").text == "LIVE-1"
            assert int(browser.find_element("id", "n-defects").text) == 2 * (i + 1)
            fps, lag = (browser.find_element("id", k).text for k in ("fps", "lag"))
            assert (fps, lag) == (("—", "—") if i == 0 else (f"{25.0 + i:.1f}", f"{0.5 * i:.1f} s")), i
            seen[i].set()
        writer.join(30)
        assert not failures, failures
        assert positions == [4.0, 8.0, 12.0, 17.5]
        assert browser.find_element("id", "skipped").text == "1.50"
        assert browser.find_element("id", "pos-bottom").text == "16.0"
        wait(browser, lambda d: shown(d) == (4, 4))   # the 50 m window follows the head: all of them
        screenshot(browser, tmp_path, "live_page.png")
        with CoilStore(db) as store:   # the weld passes: the next coil starts
            store.add_defects([DefectRecord("LIVE-2", "top", "cam-top", 2, "inclusion", 0.8, 1.0, 1.1, 10.0, 20.0,
                                            100.0, 10.0, 700.0)])
        wait(browser, lambda d: d.find_element("id", "coil-id").text == "LIVE-2")
        wait(browser, lambda d: shown(d) == (1, 0) and d.find_element("id", "n-defects").text == "1")


def test_coil_page_shows_the_grade_reasons_cut_list_and_history(browser, tmp_path):  # noqa: F811
    """A 400 m coil with one long scratch on the exposed top at 200 m (DOWNGRADE by the shipped
    rules) and a hole on the bottom (not exposed): graded twice, the page shows the current grade,
    its reasons (a click rings the defects behind one on the map), the cut list and both grades."""
    from steelscan.coils import grades
    from steelscan.coils.grading_rules import DEFAULT_RULES
    from steelscan.coils.rule_source import RuleSource

    db = tmp_path / "graded.db"
    with CoilStore(db) as store:
        store.upsert_coil(CoilInfo("G1", line_id="L2", grade="DX51D", width_mm=1200.0, length_m=400.0,
                                   exposed_surface="top"))
        store.add_defects([
            DefectRecord("G1", "top", "cam-top", 3, "scratches", 0.9, 200.0, 200.9, 500.0, 520.0, 900.0, 20.0, 9000.0),
            DefectRecord("G1", "top", "cam-top", 1, "pits", 0.8, 50.0, 50.01, 300.0, 310.0, 10.0, 10.0, 70.0),
            DefectRecord("G1", "bottom", "cam-bottom", 2, "inclusion", 0.7, 120.0, 120.02, 600.0, 615.0, 20.0, 15.0,
                         200.0)])
        store.flush()
        grades.store_grade(store.db, grades.grade_stored(store.db, "G1", RuleSource(DEFAULT_RULES)), "anna")
        record = grades.store_grade(store.db, grades.grade_stored(store.db, "G1", RuleSource(DEFAULT_RULES)), "bob")
    assert record["decision"] == "DOWNGRADE" and len(record["pieces"]) > 1   # the case the page must show
    with serving(create_app(db_path=db)) as url:
        browser.get(url + "/coils")
        wait(browser, lambda d: len(d.find_elements("css selector", "#coils tbody tr")) == 1)
        assert "DOWNGRADE → secondary" in browser.find_element("css selector", "#coils td.decision").text
        browser.get(url + "/coils/G1")
        wait(browser, lambda d: "DOWNGRADE" in d.find_element("id", "decision").text)
        assert browser.find_element("id", "decision").text == "DOWNGRADE → secondary"
        assert "graded by bob" in browser.find_element("id", "grade-note").text
        rows = browser.find_elements("css selector", "#reasons tr.reason")
        assert [r.find_element("css selector", "td").text for r in rows] == [r["rule"] for r in record["reasons"]]
        scratch = record["reasons"][0]
        assert scratch["rule"] == "large-scratch" and "900" in rows[0].text and "300 mm" in rows[0].text
        pieces = browser.find_elements("css selector", "#cuts tr.piece")
        assert len(pieces) == len(record["pieces"])
        for tr, p in zip(pieces, record["pieces"]):
            assert f"{p['start_m']:.2f}" in tr.text and f"{p['end_m']:.2f}" in tr.text and p["decision"] in tr.text
        history = browser.find_elements("css selector", "#grades tr.grade")
        assert [h.text.split()[2] for h in history] == ["bob", "anna"]
        wait(browser, lambda d: shown(d) == (2, 1))
        rows[0].click()   # the reason: the map goes to the scratch and rings it
        wait(browser, lambda d: d.find_element("id", "map-top").get_attribute("data-highlighted") == "1")
        a, b = browser.execute_script("return coilMap.view")
        assert a <= scratch["start_m"] and b >= scratch["end_m"] and b - a < 10
        screenshot(browser, tmp_path, "coil_grade.png")
