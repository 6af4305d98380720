"""Other systems: the EHR's HL7 v2 feed in (``hl7``), FHIR R4 out."""
