"""Operator tooling: the ``zkelect`` command (cli/), ``zkelect run``'s supervisor, the HTTP
endpoints, the exporter, the doctor and the demo. Built on the public API; nothing beneath
imports from here.
"""
