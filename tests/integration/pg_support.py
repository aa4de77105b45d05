"""The tests' PostgreSQL server: zkelect.localpg (shared with the benchmarks)."""

from zkelect.localpg import LocalPostgres, PostgresUnavailable

__all__ = ["LocalPostgres", "PostgresUnavailable"]
