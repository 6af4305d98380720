"""Templates and schedules as admins write them: rendering, validation, preview."""
