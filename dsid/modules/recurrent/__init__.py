"""Recurrent scans with hand-written backward passes: the fast core of the generators and
encoders."""
