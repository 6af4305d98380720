"""HL7 v2 as data, pure: the mapping file, reading one message into what it asks, the ACK."""
