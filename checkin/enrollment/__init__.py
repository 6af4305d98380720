"""Enrolling patients: one request, CSV import, phone numbers."""
