"""Registered encoders (one per file)."""
