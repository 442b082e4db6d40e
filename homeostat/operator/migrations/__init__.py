"""Alembic migrations of the history database, run at startup."""
