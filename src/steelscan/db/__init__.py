"""The defect database: SQLAlchemy 2 models, Alembic migrations shipped in the package, URL
handling and the one session factory. SQLite (WAL, foreign keys on) or PostgreSQL (psycopg 3).

    db = open_database("sqlite:///plant.db")   # or "postgresql://u:p@host/db", or a bare path
    with db.session(write=True) as s: ...
"""

from .database import Database, open_database
from .url import database_url, masked_url

__all__ = ["Database", "open_database", "database_url", "masked_url"]
