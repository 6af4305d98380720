"""checkin: post-operative recovery messages for spine-surgery patients."""

__version__ = "0.1.0"
