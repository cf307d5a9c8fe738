"""The retraining decision and its guard."""
