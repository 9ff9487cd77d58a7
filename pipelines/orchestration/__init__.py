"""The Dagster side of the pipeline: resources, partitions, assets, checks, jobs, schedules and sensors.

`pipelines.definitions` assembles these into the code location; nothing here holds state between runs.
"""
