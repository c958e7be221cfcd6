"""Database URLs: a SQLAlchemy URL (`sqlite:///x.db`, `postgresql://u:p@host:5432/db`) or a bare
path meaning SQLite. PostgreSQL always goes through psycopg 3. Passwords never reach a message."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from ..errors import DatabaseError

BACKENDS = ("sqlite", "postgresql")


def database_url(spec: str | Path | URL) -> URL:
    """`spec` -> a SQLAlchemy URL with the driver we use. Raises DatabaseError if malformed or
    not SQLite/PostgreSQL. A bare path (or ":memory:") is SQLite; its folder is created."""
    if isinstance(spec, URL):
        url = spec
    else:
        text = str(spec).strip()
        if not text:
            raise DatabaseError("empty database URL", field="db")
        if "://" not in text:
            if text == ":memory:":
                return make_url("sqlite://")
            path = Path(text).expanduser().resolve()
            path.parent.mkdir(parents=True, exist_ok=True)
            return URL.create("sqlite", database=str(path))
        try:
            url = make_url(text)
        except (ArgumentError, ValueError):
            raise DatabaseError(f"not a database URL: {masked_url(text)}", field="db") from None
    backend = url.get_backend_name()
    if backend == "postgres":  # the old Heroku-style spelling
        backend = "postgresql"
    if backend not in BACKENDS:
        raise DatabaseError(f"unsupported database {backend!r} in {masked_url(url)} "
                            f"(use sqlite:///FILE, postgresql://... or a path)", field="db")
    if backend == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    elif url.database and url.database != ":memory:":
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return url


def masked_url(url: str | URL) -> str:
    """The URL as text with its password replaced by ***, safe for messages and logs."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        # not parseable: hide anything between "://user:" and "@"
        head, sep, rest = url.partition("://")
        if sep and "@" in rest and ":" in rest.split("@", 1)[0]:
            user = rest.split("@", 1)[0].split(":", 1)[0]
            return f"{head}://{user}:***@{rest.split('@', 1)[1]}"
        return url
