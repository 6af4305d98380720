"""HL7 v2 in, FHIR R4 out: the EHR integration."""
