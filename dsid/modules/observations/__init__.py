"""Registered observations (one per file)."""
