"""The recorded line's frame table: `frames.csv` (which image is where); its `coils.csv` (level 2)
is read by `steelscan.coils.coil_table.read_coils`.

frames.csv: `file,coil_id,surface,position_m[,camera_id,timestamp]`; `file` is relative to the
frames folder, `position_m` is metres from the coil head to row 0 of the frame (may be negative
for a frame that straddles the weld from the previous coil, see `steelscan.line.runner`).

Bad rows do not stop the run: each becomes one `DatasetError` naming file, line and field(s) in
`problems`, and the good rows are used. A missing required column or an unreadable file raises.
Duplicates (the same file twice, or two frames at the same coil, surface and position) keep the
first row and name the later one as a problem.

Images: `file` is relative to the frames folder, or to its `frames/` subfolder (the layout
`steelscan synth-coil` writes; `image_root` decides once from the first frame).

Stream order: per surface, coils in the order they first appear in frames.csv (the order they
passed the camera), and within a coil the frames sorted by `position_m`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import Field

from ..data.csv_rows import CsvRow, read_csv_models
from ..errors import DatasetError

FRAME_COLUMNS = ("file", "coil_id", "surface", "position_m")
SAME_POSITION_M = 1e-6  # positions equal at this resolution (metres) are the same place


class FrameRow(CsvRow):
    """One frame of frames.csv. `line`: its line in the file (1 = header)."""

    file: str = Field(min_length=1)
    coil_id: str = Field(min_length=1)
    surface: Literal["top", "bottom"]
    position_m: float = Field(allow_inf_nan=False)
    camera_id: str | None = None
    timestamp: str | None = None
    line: int = 0


@dataclass
class FrameTable:
    """The good frames of a frames.csv, and one problem per bad or duplicate row."""

    path: Path
    frames: list[FrameRow]
    problems: list[DatasetError] = field(default_factory=list)

    def streams(self) -> dict[str, list[FrameRow]]:
        """Frames per surface in stream order (coils by first appearance, then position)."""
        first_seen: dict[tuple[str, str], int] = {}
        for i, f in enumerate(self.frames):
            first_seen.setdefault((f.surface, f.coil_id), i)
        out: dict[str, list[FrameRow]] = {}
        for f in sorted(self.frames, key=lambda f: (first_seen[(f.surface, f.coil_id)], f.position_m)):
            out.setdefault(f.surface, []).append(f)
        return out


def read_frames(path: str | Path) -> FrameTable:
    """Read frames.csv: good rows in `frames` (file order), bad and duplicate rows in `problems`."""
    path = Path(path)
    frames: list[FrameRow] = []
    problems: list[DatasetError] = []
    by_file: dict[str, int] = {}
    by_place: dict[tuple[str, str, float], int] = {}
    for line, row in read_csv_models(path, FRAME_COLUMNS, FrameRow):
        if isinstance(row, DatasetError):
            problems.append(row)
            continue
        if row.file in by_file:
            problems.append(DatasetError(f"duplicate: {row.file} is already listed on line {by_file[row.file]}",
                                         path=path, line=line, field="file"))
            continue
        place = (row.coil_id, row.surface, round(row.position_m / SAME_POSITION_M))
        if place in by_place:
            problems.append(DatasetError(f"duplicate: coil {row.coil_id} {row.surface} at {row.position_m} m is "
                                         f"already listed on line {by_place[place]}; {row.file} skipped",
                                         path=path, line=line, field="position_m"))
            continue
        by_file[row.file] = line
        by_place[place] = line
        frames.append(row)
    return FrameTable(path, frames, problems)


IMAGE_SUBFOLDERS = ("frames", "images")


def image_root(frames_dir: str | Path, table: FrameTable) -> Path:
    """The folder the `file` column is relative to: `frames_dir`, unless the first frame is not
    there but in its `frames/` (or `images/`) subfolder."""
    root = Path(frames_dir)
    if not table.frames or (root / table.frames[0].file).exists():
        return root
    for sub in IMAGE_SUBFOLDERS:
        if (root / sub / table.frames[0].file).exists():
            return root / sub
    return root
