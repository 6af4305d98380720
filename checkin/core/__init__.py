"""The pure core: schedules, timeline, send window, keywords, triage. No I/O; time is an argument."""
