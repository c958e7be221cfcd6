"""The line config (`--config line.yaml`): one home for every default of `steelscan line`.

```yaml
pixel_mm: {along: 1.0, across: 1.0}   # mm per pixel on the strip (or [along, across]; --pixel-mm overrides)
surfaces:
  top:    {drive_side: left,  camera_id: top}
  bottom: {drive_side: right, camera_id: bottom}   # the bottom camera sees the strip mirrored
frame_size: [256, 1600]               # expected [height, width] px (or frame: {height:, width:});
                                      # default: the most common size in the first batch
crop_max_age_days: 90                 # crop budget in the database (default: keep all); pinned crops
crop_max_mb: 2000                     # are never pruned, defect records always stay
```
A surface given only in part keeps the other defaults of that surface. This is the file
`steelscan synth-coil` writes beside its frames; its descriptive keys (`INFO_KEYS`: source,
line_id, truth, synth) are read past, any other unknown key is an error (a typo must not
silently leave a default in place).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import ConfigError
from ..geometry import PixelSize

DEFAULT_SURFACES = {"top": {"drive_side": "left", "camera_id": "top"},
                    "bottom": {"drive_side": "right", "camera_id": "bottom"}}
CONFIG_FILE = "line.yaml"  # looked for in the frames folder when --config is not given
INFO_KEYS = ("source", "line_id", "truth", "synth", "description")  # descriptive, not settings


class SurfaceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    drive_side: Literal["left", "right"]
    camera_id: str = Field(min_length=1)


class LineConfig(BaseModel):
    """Everything the runner needs to know about the line besides the model and the frames."""

    model_config = ConfigDict(extra="forbid")

    pixel_mm: tuple[float, float] = Field(default=(1.0, 1.0), description="mm per pixel: along, across")
    surfaces: dict[Literal["top", "bottom"], SurfaceConfig] = Field(default_factory=dict)
    frame_size: tuple[int, int] | None = Field(default=None, description="expected (height, width) px")
    position_tolerance_px: float = Field(default=0.5, ge=0, description="a gap or overlap between frames "
                                         "up to this many rows counts as contiguous")
    strip_min_contrast: float = Field(default=20.0, gt=0, description="grey levels (0..255) between strip "
                                      "and background; less: the strip fills the frame")
    crop_margin_px: int = Field(default=16, ge=0)
    crop_max_px: int = Field(default=256, ge=16, description="crops are scaled down to fit this square")
    crop_max_rows: int = Field(default=1024, ge=16, description="rows of a long defect kept for its crop "
                               "(its head)")
    crop_max_age_days: float | None = Field(default=None, gt=0, description="stored crops older than this are "
                                            "pruned (defect records kept; pinned crops never)")
    crop_max_mb: float | None = Field(default=None, gt=0, description="all stored crops within this size, "
                                      "oldest pruned first")
    batch_size: int = Field(default=8, ge=1, description="frames per inspect() call")
    prefetch: int = Field(default=16, ge=1, description="frames decoded ahead of inference")

    @model_validator(mode="before")
    @classmethod
    def _fill_surfaces(cls, data):
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k not in INFO_KEYS}
            pixel = data.get("pixel_mm")
            if isinstance(pixel, dict) and set(pixel) == {"along", "across"}:
                data["pixel_mm"] = (pixel["along"], pixel["across"])
            frame = data.get("frame")
            if isinstance(frame, dict) and set(frame) == {"height", "width"} and "frame_size" not in data:
                data["frame_size"] = (frame["height"], frame["width"])
                del data["frame"]
            given = data.get("surfaces") or {}
            if not isinstance(given, dict):
                return data
            merged = {s: {**d, **(given.get(s) or {})} for s, d in DEFAULT_SURFACES.items()}
            merged.update({s: v for s, v in given.items() if s not in merged})
            data = {**data, "surfaces": merged}
        return data

    @model_validator(mode="after")
    def _positive_pixels(self):
        PixelSize(*self.pixel_mm)  # raises ValueError on sizes <= 0
        return self

    @property
    def pixel(self) -> PixelSize:
        return PixelSize(*self.pixel_mm)

    @model_validator(mode="after")
    def _positive_size(self):
        if self.frame_size is not None and min(self.frame_size) < 1:
            raise ValueError(f"frame_size must be positive, got {list(self.frame_size)}")
        return self


def load_line_config(path: str | Path | None = None, *,
                     pixel_mm: tuple[float, float] | None = None) -> LineConfig:
    """Defaults, then the YAML file (if any), then `pixel_mm` (from --pixel-mm)."""
    data: dict = {}
    if path is not None:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            raise ConfigError("line config not found", path=path) from None
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"not readable YAML ({e.__class__.__name__})", path=path) from None
        if not isinstance(data, dict):
            raise ConfigError("expected a mapping of settings", path=path)
    if pixel_mm is not None:
        data = {**data, "pixel_mm": list(pixel_mm)}
    try:
        return LineConfig.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or None
        raise ConfigError(f"{err['msg']} (got {err.get('input')!r})", path=path, field=where) from None
