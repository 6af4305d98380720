"""Staff identity: accounts, passwords and second factors, sign-in throttling and sessions.

Used by the console (``checkin.app.web.console``) and the ``checkin staff`` commands; nothing
here knows about HTTP.
"""
