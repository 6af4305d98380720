"""Replies: store, triage and answer what patients send."""
