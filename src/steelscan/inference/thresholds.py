"""Per-class decision thresholds: the one source of truth for their defaults.

thresholds.json =
  {"classes": [{"class_id": 1, "name": "class_1", "label_threshold": 0.5,
                "pixel_threshold": 0.5, "min_component": 0, "min_area": 0}, ...]}

- label_threshold: classifier probability (0..1) a class must reach on an image, else
  that class is empty on the image (and, if no class passes, the segmenter is skipped).
- pixel_threshold: segmenter probability (0..1) a pixel must reach.
- min_component: connected components (8-connectivity) smaller than this many pixels
  are removed.
- min_area: if the class's remaining total area is under this many pixels, it is emptied.

`ThresholdsFile` (pydantic) checks a file: numbers in range, classes in order, no unknown keys;
a problem raises ConfigError naming the field, e.g. `classes[0].pixel_threshold`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from ..atomic import write_json
from ..errors import ConfigError, config_error

DEFAULT_LABEL_THRESHOLD = 0.5
DEFAULT_PIXEL_THRESHOLD = 0.5
DEFAULT_MIN_COMPONENT = 0
DEFAULT_MIN_AREA = 0


@dataclass(frozen=True)
class ClassThresholds:
    """Decision settings of one class (class_id is 1-based, as in Kaggle's CSV)."""

    class_id: int
    name: str
    label_threshold: float = DEFAULT_LABEL_THRESHOLD
    pixel_threshold: float = DEFAULT_PIXEL_THRESHOLD
    min_component: int = DEFAULT_MIN_COMPONENT
    min_area: int = DEFAULT_MIN_AREA


@dataclass
class Thresholds:
    """Settings of every class, in class order (classes[c] has class_id c + 1)."""

    classes: list[ClassThresholds] = field(default_factory=list)
    source: str = "defaults"  # the file they came from, for reports

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def class_names(self) -> list[str]:
        return [c.name for c in self.classes]

    def __getitem__(self, c: int) -> ClassThresholds:
        """Settings of channel c (0-based)."""
        return self.classes[c]

    @classmethod
    def defaults(cls, num_classes: int, class_names: list[str] | None = None) -> "Thresholds":
        names = class_names or [f"class_{i}" for i in range(1, num_classes + 1)]
        return cls([ClassThresholds(i + 1, names[i]) for i in range(num_classes)])

    def with_class(self, c: int, **changes) -> "Thresholds":
        """A copy with channel c's fields changed."""
        classes = list(self.classes)
        classes[c] = replace(classes[c], **changes)
        return Thresholds(classes, self.source)

    def to_json(self) -> dict:
        return {"classes": [asdict(c) for c in self.classes]}

    def save(self, path: str | Path) -> None:
        write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> "Thresholds":
        """Read and validate thresholds.json; any problem raises ConfigError naming the field."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError("thresholds file not found", path=path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read thresholds file ({e.__class__.__name__})", path=path) from None
        except json.JSONDecodeError as e:
            raise ConfigError(f"not valid JSON ({e.msg})", path=path, line=e.lineno) from None
        return cls.from_json(data, path=path)

    @classmethod
    def from_json(cls, data: object, *, path: object = "<thresholds>") -> "Thresholds":
        """Validate a thresholds.json object (`ThresholdsFile`); ConfigError names the field."""
        try:
            entries = ThresholdsFile.model_validate(data).classes
        except ValidationError as e:
            raise config_error(e, lambda field: path, noun="key") from None
        return cls([ClassThresholds(i + 1, e.name or f"class_{i + 1}", e.label_threshold, e.pixel_threshold,
                                    e.min_component, e.min_area) for i, e in enumerate(entries)], source=str(path))


def _whole_number(value: object) -> object:
    """Pixel counts: numbers only (2.0 reads as 2; true/false and text are mistakes)."""
    if isinstance(value, (bool, str)):
        raise PydanticCustomError("pixels", "must be a whole number of pixels >= 0")
    return value


Probability = Annotated[float, Field(ge=0.0, le=1.0, strict=True)]
Pixels = Annotated[int, BeforeValidator(_whole_number), Field(ge=0)]


class ClassEntry(BaseModel):
    """One class of thresholds.json; left-out keys take the defaults above."""

    model_config = ConfigDict(extra="forbid")

    class_id: Annotated[int, Field(strict=True)] | None = None  # 1-based position; checked by ThresholdsFile
    name: Annotated[str, Field(min_length=1, strict=True)] | None = None  # default class_<id>
    label_threshold: Probability = DEFAULT_LABEL_THRESHOLD
    pixel_threshold: Probability = DEFAULT_PIXEL_THRESHOLD
    min_component: Pixels = DEFAULT_MIN_COMPONENT
    min_area: Pixels = DEFAULT_MIN_AREA


class ThresholdsFile(BaseModel):
    """thresholds.json: {"classes": [ClassEntry, ...]}, at least one class, in class order."""

    classes: list[ClassEntry] = Field(min_length=1)

    @model_validator(mode="after")
    def _classes_in_order(self) -> "ThresholdsFile":
        for i, entry in enumerate(self.classes):
            if entry.class_id is not None and entry.class_id != i + 1:
                raise PydanticCustomError(
                    "combination", "class_id must be {want} (classes in order, 1-based), got {got}",
                    {"want": i + 1, "got": entry.class_id, "field": f"classes[{i}].class_id"})
        return self


def load_thresholds(path: str | Path | None, num_classes: int,
                    class_names: list[str] | None = None) -> Thresholds:
    """thresholds.json at `path`, or the defaults when `path` is None; the class count must
    match the models' (ConfigError otherwise)."""
    if path is None:
        return Thresholds.defaults(num_classes, class_names)
    t = Thresholds.load(path)
    if t.num_classes != num_classes:
        raise ConfigError(f"has {t.num_classes} classes but the models predict {num_classes}",
                          path=path, field="classes")
    return t
