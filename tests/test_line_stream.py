"""The line runner goes through the inference stream (`inspect_stream`, the throughput mode of
`predict`) and writes exactly what its former per-batch path wrote: the same defects at the same
places (crops included), the same uninspected lengths with their reasons, the same surface
summaries and problem lines, in the same order, for a damaged simulated line with welds
(tests/line_stream_scenario.py; the reference, tests/data/line_stream_golden.json, was written by
that path at commit 4e64d1c). Both inspector kinds: one with `inspect` only (the truth) and the
real cascade (models, then post-processing on the stream's post-processing thread)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import line_stream_scenario as scenario
from steelscan.inference.stream import IDLE, inspect_stream

GOLDEN = json.loads((Path(__file__).parent / "data" / "line_stream_golden.json").read_text())


@pytest.mark.parametrize("kind", ["truth", "cascade"])
@pytest.mark.parametrize("mode,batch", [("throughput", 4), ("throughput", 3), ("latency", 4)])
def test_stream_path_writes_what_the_per_batch_path_wrote(kind, mode, batch):
    got = scenario.run(kind, batch, mode=mode)
    want = GOLDEN[kind]
    spans = [r for r in got["records"] if r["kind"] == "uninspected"]
    assert spans and all(r.pop("uid").startswith("span-") for r in spans)   # added after the reference
    assert got["problems"] == want["problems"]
    assert got["summary"] == want["summary"]
    assert want["summary"]["defects"] > 0 and len(want["problems"]) == 6
    if batch == 4:   # the per-batch path's batch: the sink got the same records in the same order
        assert got["records"] == want["records"]
    else:            # another batch size hands over at other times; the records are the same
        key = lambda r: json.dumps(r, sort_keys=True)
        assert sorted(map(key, got["records"])) == sorted(map(key, want["records"]))
    reasons = [r["reason"] for r in got["records"] if r["kind"] == "uninspected"]
    assert sorted(reasons) == ["inspection_error", "unreadable", "unreadable", "unreadable", "unreadable",
                               "wrong_size"]


def test_idle_runs_what_came_before_pulling_on():
    """A live source with nothing new: the stream inspects and yields what it holds (a partial
    batch) before it asks the source again."""

    class Double:
        batch_size = 4

        def __init__(self):
            self.calls = []

        def infer(self, images, ids):
            self.calls.append(list(ids))
            return list(ids)

        def finish(self, out):
            return out

    pulled = []

    def items():
        for x in ["a", "b", IDLE, "c", IDLE, IDLE, "d", "e", "f", "g", "h"]:
            pulled.append(x)
            yield x

    inspector = Double()
    out = []
    for done in inspect_stream(inspector, items(), lambda x: __import__("numpy").zeros((1, 1, 3)), str):
        out.append(done if done is IDLE else done.result)
        if done is IDLE:   # everything before it is out, nothing after it was pulled
            assert pulled[-1] is IDLE and all(x in out for x in pulled if x is not IDLE)
    assert out == ["a", "b", IDLE, "c", IDLE, IDLE, "d", "e", "f", "g", "h"]
    assert inspector.calls == [["a", "b"], ["c"], ["d", "e", "f", "g"], ["h"]]
