"""The web service: `create_app` (FastAPI) over the cascade, with an SQLite history."""
