"""Chaos harness: real processes, real faults, a recorded history and a checker over it.

The method, the history format and the invariants are described in docs/reliability.md.
"""
