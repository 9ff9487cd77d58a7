"""Alerts for when something needs a person: runs that failed for good, failing asset checks, failing ticks.

Built on Dagster's run-status and ordinary sensors, so they run in the daemon the instance already has. Settings
come from the environment (pipelines/config.py, `AlertSettings`); delivery never raises into a run or a sensor.
"""
