"""The tests' PostgreSQL server: zkelect.testing.localpg (shared with the benchmarks)."""

from zkelect.testing.localpg import LocalPostgres, PostgresUnavailable

__all__ = ["LocalPostgres", "PostgresUnavailable"]
