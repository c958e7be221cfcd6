"""The line: recorded (later live) frames of coils in, defects and coverage in coil coordinates
out. `frames` and `config` read the inputs, `strip` finds the strip in a frame, `merge` turns
per-frame components into physical defects, `crops` cuts their pictures, `decode` reads frames ahead, `runner` is the loop,
`oracle` an inspector that answers with the truth, `jsonl_sink` a file sink for quick looks."""

from .config import LineConfig, load_line_config
from .frames import read_coils, read_frames
from .runner import LineRunner, LineSummary

__all__ = ["LineConfig", "LineRunner", "LineSummary", "load_line_config", "read_coils", "read_frames"]
