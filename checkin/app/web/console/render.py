"""The console's templates (shipped in the package, autoescaped) and its static files."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

HERE = Path(__file__).parent
PAGES = Environment(
    loader=FileSystemLoader(str(HERE / "templates")),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
STATIC = {
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}
REFRESH_SECONDS = 15


def page(template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    return HTMLResponse(PAGES.get_template(template).render(**ctx), status_code=status)


def local(when: datetime | None, tz: ZoneInfo) -> str:
    return when.astimezone(tz).strftime("%a %b %d %H:%M") if when else ""


def age(when: datetime, now: datetime) -> str:
    """How long ago, as a nurse would say it: 45 s, 12 min, 3 h 05 min, 2 d 4 h."""
    s = max(0, int((now - when).total_seconds()))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"
