"""Registered readouts (one per file)."""
