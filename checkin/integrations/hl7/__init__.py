"""The HL7 v2 feed: apply messages through checkin.enrollment, ACK them, listen over MLLP."""
