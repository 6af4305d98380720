"""HL7 v2 messages accepted per second and ACK latency, over MLLP, on SQLite and PostgreSQL.

    python -m tests.benchmarks.hl7_throughput [--messages 2000] [--connections 1 4] [--backend sqlite postgres]

``checkin hl7 listen`` runs as its own process (as deployed) on 127.0.0.1 against a fresh
database; the generator opens ``--connections`` MLLP connections with the ``hl7`` package's
asyncio client and sends on each one message at a time, waiting for its ACK (how an interface
engine sends). The mix follows a day's feed for a spine service: 20 % SIU^S12 booking a surgery
(enrolls a new patient and plans the timeline), 10 % S13 moving one, 45 % ADT^A08 updating a
phone, 15 % A03 discharges, 10 % resends of an earlier message (answered from the stored ACK).

One JSON line per backend and connection count: messages, non-AA ACKs, messages/s, ACK latency
p50/p90/p99/max in ms (frame sent -> ACK read). Goal (issue 13): >= 200 messages/s, p99 < 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from hl7.mllp import open_hl7_connection

from tests.benchmarks.support import database
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
MSH = "MSH|^~\\&|EPIC|RIV|CHECKIN|RIVERSIDE-SPINE|20270101||{type}|{cid}|P|2.5.1"


def pid(mrn: int, phone: str = "3125550147") -> str:
    return f"PID|1||{mrn}^^^RIV^MR||Reyes^Maria||19600101|F|||||{phone}||ENG"


def messages(n: int, seed: int = 7) -> list[str]:
    """``n`` messages in a plausible order: patients are booked before they are updated."""
    rng = random.Random(seed)
    today = date.today()
    booked: dict[int, date] = {}  # MRN -> surgery date
    sent: list[str] = []
    out: list[str] = []

    def siu(trigger: str, cid: str, mrn: int, day: date) -> str:
        ais = f"AIS|1||22612^PLF^CPT|{day:%Y%m%d}0730"
        return "\r".join([MSH.format(type=f"SIU^{trigger}", cid=cid), "SCH|1|1|||||S|S", pid(mrn), ais])

    for i in range(n):
        roll = rng.random()
        cid = f"B{i:07d}"
        if not booked or roll < 0.20:
            mrn = 700000 + len(booked)
            booked[mrn] = today + timedelta(days=rng.randint(7, 120))
            msg = siu("S12", cid, mrn, booked[mrn])
        elif roll < 0.30:
            mrn = rng.choice(list(booked))
            booked[mrn] = today + timedelta(days=rng.randint(7, 200))
            msg = siu("S13", cid, mrn, booked[mrn])
        elif roll < 0.75:
            phone = f"31255501{rng.randint(10, 99)}"
            msg = "\r".join(
                [MSH.format(type="ADT^A08", cid=cid), "EVN|A08", pid(rng.choice(list(booked)), phone)]
            )
        elif roll < 0.90:
            mrn = rng.choice(list(booked))
            pv1 = "|".join(["PV1", "1", "I", *[""] * 42, f"{booked[mrn] + timedelta(days=2):%Y%m%d}"])
            msg = "\r".join([MSH.format(type="ADT^A03", cid=cid), "EVN|A03", pid(mrn), pv1])
        else:
            out.append(rng.choice(sent))
            continue
        sent.append(msg + "\r")
        out.append(msg + "\r")
    return out


async def run(port: int, batch: list[str], connections: int) -> tuple[list[float], int]:
    latencies: list[float] = []
    not_aa = 0
    # A patient's messages stay on one connection, in order, as an engine routes them (across
    # connections order is not kept: a discharge could overtake the booking it follows).
    shares: list[list[str]] = [[] for _ in range(connections)]
    for msg in batch:
        mrn = int(msg.split("\rPID|1||", 1)[1].split("^", 1)[0])
        shares[mrn % connections].append(msg)

    async def one(share: list[str]) -> None:
        nonlocal not_aa
        reader, writer = await open_hl7_connection("127.0.0.1", port, encoding="utf-8")
        for msg in share:
            t0 = time.perf_counter()
            writer.writeblock(msg.encode())
            await writer.drain()
            ack = await reader.readblock()
            latencies.append((time.perf_counter() - t0) * 1000)
            not_aa += b"MSA|AA|" not in ack
        writer.close()

    await asyncio.gather(*(one(s) for s in shares))
    return latencies, not_aa


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return round(s[min(len(s) - 1, int(p / 100 * len(s)))], 2)


def bench(backend: str, n: int, connections: int) -> dict[str, object]:
    with database(backend) as url:
        port = free_port()
        env = {
            **os.environ,
            "CHECKIN_DATABASE_URL": url,
            "CHECKIN_SCHEDULES_DIR": str(ROOT / "schedules"),
            "CHECKIN_TEMPLATES_DIR": str(ROOT / "templates"),
            "CHECKIN_LOG_LEVEL": "WARNING",
        }
        listen = ["--env-file", "/nonexistent", "hl7", "listen", "--port", str(port)]
        proc = subprocess.Popen(
            [sys.executable, "-c", "from checkin.app.cli.main import main; main()", *listen],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if "listening" not in line:
                raise RuntimeError(f"listener did not start: {line!r}")
            batch = messages(n)
            t0 = time.perf_counter()
            latencies, not_aa = asyncio.run(run(port, batch, connections))
            elapsed = time.perf_counter() - t0
        finally:
            proc.terminate()
            proc.wait(10)
    return {
        "backend": backend,
        "connections": connections,
        "messages": len(latencies),
        "not_aa": not_aa,
        "messages_per_s": round(len(latencies) / elapsed, 1),
        "ack_ms_p50": pct(latencies, 50),
        "ack_ms_p90": pct(latencies, 90),
        "ack_ms_p99": pct(latencies, 99),
        "ack_ms_max": round(max(latencies), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--backend", nargs="+", default=["sqlite", "postgres"])
    args = parser.parse_args()
    for backend in args.backend:
        for c in args.connections:
            print(json.dumps(bench(backend, args.messages, c)), flush=True)


if __name__ == "__main__":
    main()
