"""FHIR R4 out: readings and alerts queued, validated and written to the EHR exactly once."""
