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
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ..atomic import write_json
from ..errors import ConfigError

DEFAULT_LABEL_THRESHOLD = 0.5
DEFAULT_PIXEL_THRESHOLD = 0.5
DEFAULT_MIN_COMPONENT = 0
DEFAULT_MIN_AREA = 0

_FLOAT_FIELDS = ("label_threshold", "pixel_threshold")
_INT_FIELDS = ("min_component", "min_area")


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
        if not isinstance(data, dict) or not isinstance(data.get("classes"), list) or not data["classes"]:
            raise ConfigError('expected {"classes": [ {...}, ... ]} with at least one class',
                              path=path, field="classes")
        classes = []
        for i, entry in enumerate(data["classes"]):
            where = f"classes[{i}]"
            if not isinstance(entry, dict):
                raise ConfigError("expected an object", path=path, field=where)
            class_id = entry.get("class_id", i + 1)
            if not isinstance(class_id, int) or isinstance(class_id, bool) or class_id != i + 1:
                raise ConfigError(f"class_id must be {i + 1} (classes in order, 1-based), got {class_id!r}",
                                  path=path, field=f"{where}.class_id")
            values: dict = {}
            for key in _FLOAT_FIELDS:
                v = entry.get(key, getattr(ClassThresholds, key))
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
                    raise ConfigError(f"must be a number in 0..1, got {v!r}", path=path, field=f"{where}.{key}")
                values[key] = float(v)
            for key in _INT_FIELDS:
                v = entry.get(key, getattr(ClassThresholds, key))
                if isinstance(v, float) and v.is_integer():
                    v = int(v)
                if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                    raise ConfigError(f"must be a whole number of pixels >= 0, got {v!r}",
                                      path=path, field=f"{where}.{key}")
                values[key] = v
            name = entry.get("name", f"class_{i + 1}")
            if not isinstance(name, str) or not name:
                raise ConfigError(f"name must be a non-empty string, got {name!r}", path=path, field=f"{where}.name")
            unknown = set(entry) - {"class_id", "name", *_FLOAT_FIELDS, *_INT_FIELDS}
            if unknown:
                raise ConfigError(f"unknown key(s) {sorted(unknown)}", path=path, field=where)
            classes.append(ClassThresholds(class_id, name, **values))
        return cls(classes, source=str(path))


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
