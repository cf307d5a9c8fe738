"""Prediction-log reading, Evidently drift reports and the retraining decision."""
