"""Alerts: one open alert per patient, its notifications, ladder and sweeps."""
