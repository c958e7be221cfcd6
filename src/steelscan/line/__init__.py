"""The line: frames of coils in (recorded or live), defects and coverage in coil coordinates
out. `frames` and `config` read the inputs (coils.csv: `steelscan.coils.coil_table`), `strip` finds the strip in a frame, `merge` turns
per-frame components into physical defects, `crops` cuts their pictures, `decode` reads frames ahead, `runner` is the loop,
`sources` the frame sources (replay; `watch` a camera folder, `simulate` a synthetic line, `camera`
GenICam), `state` the runner's place across restarts, `lag` how far behind it is, `spool` the sink
wrapper that loses nothing when the database goes away, `oracle` an inspector that answers with the
truth, `jsonl_sink` a file sink for quick looks."""

from .config import LineConfig, load_line_config
from .frames import read_frames
from .runner import LineRunner, LineSummary

__all__ = ["LineConfig", "LineRunner", "LineSummary", "load_line_config", "read_frames"]
