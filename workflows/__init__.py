"""Deterministic orchestration only: no I/O, no clocks but `workflow.now()`."""
