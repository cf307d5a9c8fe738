"""Evidently drift reports and the drift measures."""
