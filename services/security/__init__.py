"""Least privilege: each process's NATS role, and what its credentials may do."""
