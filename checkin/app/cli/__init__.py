"""The ``checkin`` command line."""
