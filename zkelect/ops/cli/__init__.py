"""The ``zkelect`` command: one typer app (main.py) and a module per command group."""
