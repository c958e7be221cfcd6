"""The coil pages in a real headless browser (Debian chromium + chromedriver via selenium): the
coil page draws every defect of a known coil, zooming fetches only the visible range, a click
shows a defect's crop or an uninspected span's reason and uid, and the live page advances while
a background thread writes a coil and while a simulated line runs (over server-sent events, and
by polling when the event stream fails).
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


def test_coil_page_uninspected_spans_show_their_reason_and_uid(browser, coil_db):  # noqa: F811
    """C1 has a `missing` span on top (5.0-6.25 m): clicking the grey hatch where no defect is
    drawn, or its row in the coverage table, shows its reason and uid."""
    from selenium.webdriver.common.action_chains import ActionChains

    spans = {u["surface"]: u for u in CoilStore(coil_db).uninspected("C1")}
    with serving(create_app(db_path=coil_db)) as url:
        browser.get(url + "/coils/C1")
        wait(browser, lambda d: shown(d) == (20, 20))
        # a point inside the top span, clear of every defect box by more than the 6 px pick radius
        x, y = browser.execute_script(
            "const m = coilMap, cv = document.getElementById('map-top'), w = cv.clientWidth, h = cv.clientHeight;"
            "const boxes = m.inView('top').map(d => m.defectBox(d, w, h));"
            "for (let mm = 5.1; mm < 6.2; mm += 0.05) for (let y = 4; y < h - 4; y += 2) {"
            "  const x = m.x(mm, w);"
            "  if (boxes.every(([bx, by, bw, bh]) => x < bx - 8 || x > bx + bw + 8 || y < by - 8 || y > by + bh + 8))"
            "    return [x, y]; }"
            "return null;")
        canvas = browser.find_element("id", "map-top")
        rect = canvas.rect
        ActionChains(browser).move_to_element_with_offset(
            canvas, int(x - rect["width"] / 2), int(y - rect["height"] / 2)).click().perform()
        wait(browser, lambda d: spans["top"]["uid"] in d.find_element("id", "fields").text)
        fields = browser.find_element("id", "fields").text
        assert "missing" in fields and "5.000 – 6.250 m" in fields
        rows = browser.find_elements("css selector", "#gaps tbody tr.link")
        assert len(rows) == 2
        next(r for r in rows if r.text.startswith("bottom")).click()
        wait(browser, lambda d: spans["bottom"]["uid"] in d.find_element("id", "fields").text)
        assert "unreadable" in browser.find_element("id", "fields").text


def _number(driver, element_id: str) -> float | None:
    """The number an element shows ("12.5", "0.4 s"), None for "—" or nothing."""
    try:
        return float(driver.find_element("id", element_id).text.split()[0])
    except (ValueError, IndexError):
        return None


def test_live_page_follows_a_simulated_line(browser, tmp_path):  # noqa: F811
    """A simulated line (a 4 m coil, 32-row frames at 0.32 m/s: one frame every 0.1 s; the painted
    masks as the inspector, 3x slower than the line, so about 2/3 of the frames are skipped
    `behind`) writes into the database the service reads. The line's time is a fake clock (the
    inspector advances it), so what is skipped does not depend on this machine's load; the
    inspector holds after 8 frames until the page has shown them. The page's frame count and
    position grow while the line runs, and it shows the runner's frames/s, lag and the metres
    skipped, as the database holds them."""
    import time

    from steelscan.coils import queries
    from steelscan.line.config import LineConfig
    from steelscan.line.runner import LineRunner
    from steelscan.line.simulate import SimulatedLine, TruthInspector
    from test_line_sources import FakeClock

    clock, shown_first = FakeClock(), threading.Event()

    class SlowTruth(TruthInspector):
        inspected = 0

        def inspect(self, images, ids):
            if self.inspected >= 8 and not shown_first.wait(120):
                raise TimeoutError("the page never showed the first frames")
            self.inspected += len(images)
            clock.t += 0.3 * len(images)       # the line's time: 3 frame periods per frame
            time.sleep(0.05 * len(images))     # and some real time, for the published frames/s
            return super().inspect(images, ids)

    db = tmp_path / "line.db"
    CoilStore(db).close()
    line = SimulatedLine(coils=1, coil_length_m=4.0, speed_m_s=0.32, realtime=True, width_mm=200,
                         frame_size=(32, 256), surfaces=("top",), truth=True, clock=clock, sleep=clock.sleep)
    summary, failures = {}, []

    def run_line() -> None:
        try:
            with CoilStore(db) as store:
                runner = LineRunner(SlowTruth(line), store, LineConfig(batch_size=4), max_lag_s=1.0, clock=clock)
                summary["line"] = runner.run_source(line)
        except BaseException as e:   # reported by the test
            failures.append(e)

    with serving(create_app(db_path=db)) as url:
        browser.get(url + "/live")
        wait(browser, lambda d: d.execute_script("return window.live.mode") == "events")
        runner = threading.Thread(target=run_line, daemon=True)
        runner.start()
        wait(browser, lambda d: d.find_element("id", "coil-id").text == "C0-001", timeout=120)
        wait(browser, lambda d: _number(d, "frames") is not None, timeout=120)
        frames, position = _number(browser, "frames"), _number(browser, "pos-top")
        assert 0 < frames <= 8 and position > 0
        shown_first.set()
        wait(browser, lambda d: _number(d, "frames") > frames and _number(d, "pos-top") > position, timeout=120)
        wait(browser, lambda d: _number(d, "fps") is not None and d.find_element("id", "lag").text.endswith(" s"),
             timeout=120)
        wait(browser, lambda d: _number(d, "skipped") > 0, timeout=120)
        runner.join(120)
        assert not failures and not runner.is_alive(), failures
        assert summary["line"].behind > 0 and summary["line"].inspected > 8
        with CoilStore(db) as store:
            status = queries.line_status(store.db, "C0-001")[0]
            behind = sum(u["end_m"] - u["start_m"] for u in store.uninspected("C0-001") if u["reason"] == "behind")
        assert behind == pytest.approx(summary["line"].behind_m) and status["lag_s"] is not None
        wait(browser, lambda d: d.find_element("id", "skipped").text == f"{behind:.2f}", timeout=120)
        wait(browser, lambda d: d.find_element("id", "frames").text == str(status["frames"]), timeout=120)
        assert browser.find_element("id", "fps").text == f"{status['frames_per_s']:.1f}"
        assert browser.find_element("id", "lag").text == f"{status['lag_s']:.1f} s"
        assert browser.execute_script("return window.live.mode") == "events"
        assert browser.execute_script("return window.live.polls") == 0
        screenshot(browser, tmp_path, "live_simulated.png")


def test_live_page_polls_when_the_event_stream_fails(browser, coil_db):  # noqa: F811
    """A proxy that refuses the event stream (503 here): the page falls back to polling the JSON
    API and still shows the coil on the line."""
    from starlette.responses import PlainTextResponse

    app = create_app(db_path=coil_db)

    @app.middleware("http")
    async def refuse_events(request, call_next):
        if request.url.path == "/v1/live/events":
            return PlainTextResponse("no streams here", status_code=503)
        return await call_next(request)

    with serving(app) as url:
        browser.get(url + "/live")
        wait(browser, lambda d: d.execute_script("return window.live.mode") == "polling")
        wait(browser, lambda d: d.find_element("id", "coil-id").text == "C2")
        wait(browser, lambda d: d.execute_script("return window.live.polls") >= 2)
        assert browser.find_element("id", "n-defects").text == "3"
        assert "Polling every 1 s" in browser.find_element("id", "transport").text
