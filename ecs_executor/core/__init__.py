"""Pure decisions: no I/O; values in, verdicts out. No clock of their own, except the token bucket of
``pacing``, which waits (its clock and sleep can be passed in)."""
