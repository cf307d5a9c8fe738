"""Prefect tasks: each wraps plain functions from the libraries below it."""
