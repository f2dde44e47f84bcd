"""Hostile-input tests: every refusal asserted exactly."""
