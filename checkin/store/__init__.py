"""Persistence: models, engine, migrations, the audit log and the outbox state machine."""

# Tables defined in modules of their own register on ``models.Base`` with the rest: whoever
# imports a model (or the migrations) gets every table in ``Base.metadata``.
from checkin.store import consents, fhir_exports, hl7_messages  # noqa: F401
