"""Prefect flows: thin wiring of the tasks in `tasks/`."""
