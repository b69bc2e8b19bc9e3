"""Registered generators (one per file)."""
