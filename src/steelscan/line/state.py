"""The runner's place on the line, kept across restarts: per surface the open coil (its id,
camera, coverage cursor, counts) and the coils it closed, plus whatever the source needs to go on
(a folder watcher's frames.csv offset). One JSON file, replaced atomically after each batch once
the batch's records are in the sink, so a restart neither inspects a frame twice nor skips one.

The file lives in the `--state` folder (default: beside a file database): `state-<name>.json`,
the name per camera process (`all`, `top`, `bottom`)."""

from __future__ import annotations

import json
from pathlib import Path

from ..atomic import write_json
from ..errors import ConfigError

VERSION = 1


class LineState:
    def __init__(self, folder: str | Path, name: str = "all") -> None:
        self.folder = Path(folder)
        self.path = self.folder / f"state-{name}.json"
        self.data: dict = {"version": VERSION, "surfaces": {}, "source": {}}
        if self.path.exists():
            try:
                self.data = json.loads(self.path.read_text())
            except (OSError, ValueError) as e:
                raise ConfigError(f"line state not readable ({e.__class__.__name__}); move it away to start "
                                  "afresh", path=self.path) from None

    def lock(self) -> None:
        """Hold `state-<name>.lock` for this process's life: a second runner on the same state
        (which would inspect the same frames again) stops with one line instead."""
        import fcntl

        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.folder / f"{self.path.stem}.lock", "a+")
        try:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.close()
            raise ConfigError("another steelscan line runs with this state; give each process its own --state "
                              "(or --surface)", path=self.folder) from None

    def surfaces(self) -> list[str]:
        return [s for s, v in self.data.get("surfaces", {}).items() if v]

    def surface(self, surface: str) -> dict | None:
        return self.data.get("surfaces", {}).get(surface)

    @property
    def source(self) -> dict:
        return self.data.setdefault("source", {})

    def save(self, surfaces: dict[str, dict]) -> None:
        self.data["surfaces"] = {**self.data.get("surfaces", {}), **surfaces}
        write_json(self.path, self.data)
