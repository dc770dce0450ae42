"""Supervision: the team dashboard (charts with their tables and CSV), workload and deadlines."""
