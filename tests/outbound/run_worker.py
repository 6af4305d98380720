"""A ``checkin worker`` for the subprocess tests: the real ``worker.run`` with the real
Twilio channel (``TWILIO_*`` and ``CHECKIN_TWILIO_API_URL`` from the environment), with short
timings from ``OUTBOUND_TUNING`` (JSON) and an optional test hook:

``OUTBOUND_HOOK=after_send:<path>``: after the SMS channel returns a receipt, write ``<path>``
and block, so the test can SIGKILL the worker after the provider answered but before the
outcome is committed (docs/reliability.md R1, variant c).
"""

from __future__ import annotations

import json
import os
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

from checkin.app.bootstrap import build_services
from checkin.app.worker import Tuning, run
from checkin.channels import Channel, OutgoingMessage, Receipt
from checkin.config import Settings
from checkin.store.outbox import Policy


class BlockAfterSend:
    def __init__(self, inner: Channel, marker: Path) -> None:
        self._inner = inner
        self._marker = marker
        self.list_recent = inner.list_recent

    def send(self, message: OutgoingMessage) -> Receipt:
        receipt = self._inner.send(message)
        self._marker.write_text(receipt.provider_id)
        threading.Event().wait()  # until SIGKILL
        return receipt


def tuning_from(raw: dict[str, Any]) -> Tuning:
    policy = {
        k: (timedelta(seconds=v) if k != "max_attempts" else v) for k, v in raw.pop("policy", {}).items()
    }
    return Tuning(policy=Policy(**policy), **raw)


def main() -> None:
    services = build_services(Settings.from_env(dict(os.environ)))
    hook = os.environ.get("OUTBOUND_HOOK", "")
    if hook.startswith("after_send:"):
        services.sms = BlockAfterSend(services.sms, Path(hook.split(":", 1)[1]))
    tuning = tuning_from(json.loads(os.environ.get("OUTBOUND_TUNING", "{}")))
    run(services, worker_id=os.environ.get("OUTBOUND_WORKER_ID") or None, tuning=tuning)


if __name__ == "__main__":
    main()
