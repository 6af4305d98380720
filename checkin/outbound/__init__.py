"""Sending: claim due outbox rows, deliver through a channel, reconcile what is in doubt."""
