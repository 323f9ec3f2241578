"""What payload encryption costs: a loan's start, the dossier's status read, a history decode; on vs off.

    python -m bench.encryption              # 20 loans per mode, throw-away Temporal dev server + PostgreSQL
    python -m bench.encryption --loans 50 --json out.json

Both modes run in the same process against the same servers, each with the product's worker (build_worker:
real activities, messages queued in the outbox) on its own task queue; "on" is the product's converter
(privacy.converter: per-loan data keys in PostgreSQL, master key ring), "off" the plain pydantic converter.
Modes alternate loan by loan, so a slow moment of the shared machine hits both alike. Measured per loan:

    start     start_loan → the first status query answered (the first one creates the loan's data key)
    dossier   one status query, as the admin UI's dossier page makes it (data key cached)
    page      the whole dossier page (GET /loans/ID) of the admin UI, logged in as a supervisor: the status
              query above plus the page's database reads, read audit and rendering
    history   fetch the whole history and decode every payload in it through the client's converter, as the
              Web UI's codec server does
    aged history   the same decode on loans aged first (`--aged` loans per mode run on the demo time scale
              for `--age-seconds`, both modes at once): weeks of steps, so dozens of payloads per history
    codec     encode + decode of one CollectionInput-sized payload, the codec alone (no I/O)

"payloads" in the JSON is how many payloads each history decode handled (a count, not ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, WorkflowSerializationContext

from activities.db import create_pool
from admin.app import create_app
from admin.settings import AdminSettings
from admin.users import create_user, generated_password
from admin.web import Services
from bench.portfolio import login
from bench.seed_portfolio import migrated_database
from domain.loan import Borrower, Loan
from domain.strategy import default_strategy
from privacy.codec import EncryptionCodec
from privacy.converter import data_converter
from privacy.keyring import KeyRing
from stack.embedded import TemporalDevServer, free_port
from stack.settings import Settings
from stack.worker_runtime import build_worker
from starter.api import CollectionsStarter

MODES = ("off", "on")
MEASURES = ("start", "dossier", "page", "history", "aged history", "codec")
AGED_DAY_SECONDS = 0.2  # demo time scale of the aged loans: 5 collections days per real second


def _loan(number: int) -> Loan:
    today = datetime.now(UTC).date()
    return Loan(
        loan_id=f"BENCH-ENC-{uuid.uuid4().hex[:8]}-{number}",
        borrower=Borrower(
            name="王秀英",
            phone="+8613800138000",
            email="wang.xiuying@example.cn",
            postal_address="上海市浦东新区世纪大道100号",
        ),
        currency="CNY",
        amount_overdue_minor=150_000,
        principal_outstanding_minor=600_000,
        overdue_since=today - timedelta(days=3 + number % 20),
    )


async def _timed(samples: list[float], work: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = await work()
    samples.append((time.perf_counter() - started) * 1000)
    return result


def _payloads(message: Message, found: list[Payload]) -> list[Payload]:
    """Every payload in a history event, failures included (search attributes are not codec payloads)."""
    if isinstance(message, Payload):
        found.append(message)
        return found
    for descriptor, value in message.ListFields():
        if descriptor.name == "search_attributes":
            continue
        if isinstance(value, Message):
            _payloads(value, found)
        elif hasattr(value, "values") and callable(value.values):
            for item in value.values():
                if isinstance(item, Message):
                    _payloads(item, found)
        elif not isinstance(value, str | bytes) and hasattr(value, "__iter__"):
            for item in value:
                if isinstance(item, Message):
                    _payloads(item, found)
    return found


async def _decode_history(client: Client, loan_id: str) -> int:
    history = await client.get_workflow_handle(f"collection-{loan_id}").fetch_history()
    payloads: list[Payload] = []
    for event in history.events:
        _payloads(event, payloads)
    await client.data_converter.decode(payloads)  # codec (if any), then JSON to Python values
    return len(payloads)


async def _admin(pool: Any, starter: CollectionsStarter, username: str, password: str) -> httpx.AsyncClient:
    """An HTTP client logged in to an admin UI whose loans are reached through `starter` (one mode)."""
    app = create_app(AdminSettings(secret_key="e" * 40), services=Services(pool, starter))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")
    await login(client, username, password)
    return client


async def _measure(
    into: dict[str, list[float]],
    client: Client,
    starter: CollectionsStarter,
    loan: Loan,
    admin: httpx.AsyncClient,
) -> None:
    async def start() -> None:
        await starter.start_loan(loan)
        await starter.status(loan.loan_id)

    async def dossier() -> None:
        await starter.status(loan.loan_id)

    async def page() -> None:
        answer = await admin.get(f"/loans/{loan.loan_id}")
        if answer.status_code != 200:
            raise RuntimeError(f"dossier page of {loan.loan_id}: {answer.status_code}")

    async def history() -> None:
        into.setdefault("payloads", []).append(await _decode_history(client, loan.loan_id))

    await _timed(into["start"], start)
    await _timed(into["dossier"], dossier)
    await _timed(into["page"], page)
    await _timed(into["history"], history)
    await starter.handle(loan.loan_id).terminate("benchmark done")


async def _codec_once(codec: EncryptionCodec | None, payload: Payload, samples: list[float]) -> None:
    if codec is None:
        samples.append(0.0)
        return
    started = time.perf_counter()
    await codec.decode(await codec.encode([payload]))
    samples.append((time.perf_counter() - started) * 1000)


async def _age(
    clients: dict[str, Client], queues: dict[str, str], count: int, seconds: float
) -> dict[str, list[str]]:
    """Start `count` loans per mode on the demo time scale, let them run, stop them: long histories."""
    aged: dict[str, list[str]] = {m: [] for m in MODES}
    starters = {
        m: CollectionsStarter(
            clients[m], task_queue=queues[m], strategy=default_strategy(), demo_day_seconds=AGED_DAY_SECONDS
        )
        for m in MODES
    }
    for number in range(count):
        for mode in MODES:
            loan = _loan(1000 + number)
            await starters[mode].start_loan(loan)
            aged[mode].append(loan.loan_id)
    await asyncio.sleep(seconds)
    for mode in MODES:
        for loan_id in aged[mode]:
            await starters[mode].handle(loan_id).terminate("benchmark: aged")
    return aged


async def run(
    loans: int, database_url: str | None, aged: int = 5, age_seconds: float = 6.0
) -> dict[str, dict[str, list[float]]]:
    samples: dict[str, dict[str, list[float]]] = {m: {k: [] for k in MEASURES} for m in MODES}
    state = Path(tempfile.mkdtemp(prefix="overdue-bench-enc-"))
    temporal = TemporalDevServer(state, port=free_port(), ui_port=free_port(), headless=True)
    await temporal.start()
    try:
        async with migrated_database(database_url) as database:
            pool = await create_pool(database, max_size=8)
            try:
                plain = await Client.connect(temporal.target, data_converter=pydantic_data_converter)
                ring = KeyRing.generate()
                converters: dict[str, DataConverter] = {
                    "off": pydantic_data_converter,
                    "on": data_converter(ring, pool),
                }
                clients = {m: _with_converter(plain, c) for m, c in converters.items()}
                queues = {m: f"bench-enc-{m}-{uuid.uuid4().hex[:6]}" for m in MODES}
                starters = {
                    m: CollectionsStarter(clients[m], task_queue=queues[m], strategy=default_strategy())
                    for m in MODES
                }
                username = f"bench-{uuid.uuid4().hex[:8]}"
                password = generated_password(username)
                await create_user(pool, username, password, role="supervisor", display_name="Bench")
                admins = {m: await _admin(pool, starters[m], username, password) for m in MODES}
                workers = [build_worker(Settings(task_queue=queues[m]), clients[m], pool) for m in MODES]
                running = [asyncio.create_task(w.run()) for w in workers]
                sample = Payload(
                    metadata={"encoding": b"json/plain"},
                    data=_loan(0).model_dump_json().encode() * 4,  # about a CollectionInput with its strategy
                )
                codec = EncryptionCodec(ring, pool).with_context(
                    WorkflowSerializationContext(namespace="default", workflow_id="collection-BENCH-CODEC")
                )
                try:
                    aged_loans = await _age(clients, queues, aged, age_seconds) if aged else {}
                    for number in range(aged):
                        for mode in MODES if number % 2 else reversed(MODES):
                            loan_id = aged_loans[mode][number]

                            async def read(mode: str = mode, loan_id: str = loan_id) -> None:
                                payloads = await _decode_history(clients[mode], loan_id)
                                samples[mode].setdefault("aged payloads", []).append(payloads)

                            await _timed(samples[mode]["aged history"], read)
                    for number in range(loans + 1):  # loan 0 of each mode warms up, not counted
                        for mode in MODES if number % 2 else reversed(MODES):
                            into = samples[mode] if number else {k: [] for k in MEASURES}

                            await _measure(into, clients[mode], starters[mode], _loan(number), admins[mode])
                            await _codec_once(codec if mode == "on" else None, sample, into["codec"])
                finally:
                    for admin in admins.values():
                        await admin.aclose()
                    for worker in workers:
                        await worker.shutdown()
                    await asyncio.gather(*running, return_exceptions=True)
            finally:
                await pool.close()
    finally:
        await temporal.stop()
        shutil.rmtree(state, ignore_errors=True)
    return samples


def _with_converter(client: Client, converter: DataConverter) -> Client:
    config = client.config()
    config["data_converter"] = converter  # same connection, another converter
    return Client(**config)


def summary(samples: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, dict[str, float]]]:
    return {
        mode: {
            measure: {
                "min": round(min(values), 2),
                "median": round(statistics.median(values), 2),
                "max": round(max(values), 2),
                "n": len(values),
            }
            for measure, values in by_measure.items()
            if values
        }
        for mode, by_measure in samples.items()
    }


def table(figures: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = [
        "| measure | off min / median / max ms | on min / median / max ms | median on - off |",
        "|---------|--------------------------:|-------------------------:|----------------:|",
    ]
    for measure in MEASURES:
        off, on = figures["off"].get(measure), figures["on"].get(measure)
        if not off or not on:
            continue
        cells = [f"{f['min']:.1f} / {f['median']:.1f} / {f['max']:.1f}" for f in (off, on)]
        lines.append(f"| {measure} | {cells[0]} | {cells[1]} | {on['median'] - off['median']:+.1f} |")
    for name in ("payloads", "aged payloads"):
        if name in figures["on"]:
            lines.append(f"{name} per history (median): {figures['on'][name]['median']:g}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.encryption", description=__doc__.split("\n\n")[0])
    parser.add_argument("--loans", type=int, default=20, help="loans per mode (default 20)")
    parser.add_argument("--aged", type=int, default=5, help="aged loans per mode (default 5; 0: none)")
    parser.add_argument("--age-seconds", type=float, default=6.0, help="how long they run (default 6)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this file")
    parser.add_argument("--database-url", help="an existing database (migrated; rows are added to it)")
    args = parser.parse_args(argv)
    if args.loans < 1:
        parser.error("--loans: must be at least 1")
    if args.aged < 0 or args.age_seconds <= 0:
        parser.error("--aged: must be 0 or more; --age-seconds: must be more than 0")
    figures = summary(asyncio.run(run(args.loans, args.database_url, args.aged, args.age_seconds)))
    document = {
        "date": date.today().isoformat(),
        "loans_per_mode": args.loans,
        "aged_loans_per_mode": args.aged,
        "figures": figures,
    }
    text = json.dumps(document, indent=2)
    if args.json:
        args.json.write_text(text)
    print(text)
    print()
    print(table(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
