"""Choosing the configured target; deploy and rollback through it."""
