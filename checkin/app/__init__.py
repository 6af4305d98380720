"""Processes: the composition root, the worker, the CLI and the web app."""
