"""Registered coupling (one per file)."""
