"""Registered augmentations (one per file)."""
