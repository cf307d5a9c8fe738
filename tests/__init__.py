"""Tests: unit, data, model and integration layers."""
