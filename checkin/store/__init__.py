"""Persistence: models, engine, migrations, the audit log and the outbox state machine."""
