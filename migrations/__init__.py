"""Alembic migration history of the warehouse; driven by `pipelines.warehouse.migrate`."""
