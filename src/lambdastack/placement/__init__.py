"""Placement: which worker runs an invocation (this process's, or a worker node's)."""
