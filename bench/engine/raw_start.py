"""The intake baseline: a raw `start_workflow` loop over a loan file, as a process like `starter start`.

    python -m bench.engine.raw_start FILE --concurrency 20

Same client factory (starter.connect.connect), same file loader, same workflow input as the product's
start; none of the product's start policy (id reuse/conflict handling, memo, search attributes, summaries,
per-loan checks). Prints how many it started.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from domain.contact_profiles import load_profiles
from domain.strategy import load_strategy
from stack.settings import Settings
from starter.connect import connect
from starter.loaders import load_loans
from workflows.messages import WORKFLOW_NAME, CollectionInput, workflow_id


async def _main(path: Path, concurrency: int) -> int:
    settings = Settings()
    strategy = load_strategy(settings.strategy_file)
    profiles = load_profiles(settings.contact_profiles_file)
    loans = load_loans(path)
    client = await connect(settings)
    semaphore = asyncio.Semaphore(concurrency)

    async def start(request: CollectionInput) -> None:
        async with semaphore:
            await client.start_workflow(
                WORKFLOW_NAME, request, id=workflow_id(request.loan.loan_id), task_queue=settings.task_queue
            )

    requests = [
        CollectionInput(loan=loan, strategy=strategy, profile=profiles[loan.jurisdiction]) for loan in loans
    ]
    await asyncio.gather(*(start(request) for request in requests))
    return len(requests)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.engine.raw_start")
    parser.add_argument("file", type=Path)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    print(f"{asyncio.run(_main(args.file, args.concurrency))} started")


if __name__ == "__main__":
    main()
