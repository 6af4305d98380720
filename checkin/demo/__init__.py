"""`checkin demo`: the production code paths on a simulated clock, end to end."""
