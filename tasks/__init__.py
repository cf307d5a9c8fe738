"""Prefect tasks and the plain functions they wrap."""
