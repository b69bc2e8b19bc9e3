"""Registered priors (one per file)."""
