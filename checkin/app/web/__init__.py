"""The web side of checkin: Twilio webhooks, the email check-in form, health checks.

``create_app(services)`` builds the ASGI app (no globals); ``serve(services, host, port)``
runs it under uvicorn. Why FastAPI: see ``checkin.app.web.app``.
"""

from __future__ import annotations

from checkin.app.web.app import create_app, serve

__all__ = ["create_app", "serve"]
