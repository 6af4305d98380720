"""FHIR R4 resources as plain JSON-ready dicts, built from plain values. Pure."""
