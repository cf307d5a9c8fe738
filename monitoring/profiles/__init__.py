"""Mergeable per-hour profiles of prediction logs: every row counted, against the reference's bins."""
