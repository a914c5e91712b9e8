"""Alembic migrations for the storage schema (run via ``priorgate db upgrade``)."""
