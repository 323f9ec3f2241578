"""`python -m privacy.keys`: the payload encryption key ring (README "Encryption").

    show                  where the ring comes from, the active key id and every key id (never key bytes)
    rotate [--id ID]      add a new random key and make it active (creates the file if there is none)
    add [--id ID]         add a new key without activating it (first step of a rolling rotation)
    activate ID           make a key of the ring the active one
    rewrap                re-wrap every loan data key under the active key (needs the database)

The file is OVERDUE_CODEC_KEYS_FILE, else `<OVERDUE_STATE_DIR>/codec-keys.json` (what `make run` uses), or
--file. A ring given in OVERDUE_CODEC_KEYS lives in your secret store: rotate it there (`rotate --file
new.json` makes the new JSON). Processes load the ring at start: restart them after a change.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from privacy.keyring import (
    CodecSettings,
    KeyRing,
    KeyRingError,
    load_keyring,
    read_keyring_file,
    write_keyring_file,
)

RESTART = (
    "restart the workers, the admin UI and the API (make run: stop and start it): processes read the ring "
    "at start"
)


def _target_file(args: argparse.Namespace, settings: CodecSettings) -> Path:
    if args.file is not None:
        return Path(args.file)
    if settings.codec_keys is not None:
        raise KeyRingError(
            "the ring comes from OVERDUE_CODEC_KEYS (a secret store): change it there; "
            "`python -m privacy.keys rotate --file new.json` writes a rotated ring to copy from"
        )
    return settings.codec_keys_file or settings.dev_keyring_file


def _show(args: argparse.Namespace, settings: CodecSettings) -> int:
    if args.file is not None:
        ring, source = read_keyring_file(Path(args.file)), str(args.file)
    else:
        ring = load_keyring(settings)
        source = (
            "OVERDUE_CODEC_KEYS" if settings.codec_keys is not None else str(_target_file(args, settings))
        )
    print(f"source  {source}")
    print(f"active  {ring.active_key_id}")
    print(f"keys    {', '.join(ring.key_ids)}")
    return 0


def _change(args: argparse.Namespace, settings: CodecSettings) -> int:
    path = _target_file(args, settings)
    existing = read_keyring_file(path) if path.exists() else None
    if args.command == "activate":
        if existing is None:
            raise KeyRingError(f"{path}: no key ring there to activate {args.key_id!r} in")
        ring = KeyRing(active=args.key_id, keys=existing.keys)
    elif existing is None:
        if args.command == "add":
            raise KeyRingError(f"{path}: no key ring yet: `rotate` creates one with an active key")
        ring = KeyRing.generate(args.id or "k1")
    else:
        rotated = existing.rotated(args.id)
        ring = rotated if args.command == "rotate" else KeyRing(active=existing.active, keys=rotated.keys)
    write_keyring_file(path, ring)
    added = sorted(set(ring.key_ids) - set(existing.key_ids if existing else []))
    print(f"{path}: active {ring.active_key_id}; keys {', '.join(ring.key_ids)}", end="")
    print(f" (added {', '.join(added)})" if added else "")
    print(f"next: {RESTART}")
    if args.command == "add":
        print(f"then, once every process holds it: python -m privacy.keys activate {added[0]}")
    elif args.command != "activate" and existing is not None:
        print("then (optional): python -m privacy.keys rewrap  (loan data keys under the new key)")
    return 0


def _rewrap(args: argparse.Namespace, settings: CodecSettings) -> int:
    from privacy.data_keys import rewrap_all
    from stack.settings import Settings
    from starter.connect import database_opener

    ring = read_keyring_file(Path(args.file)) if args.file is not None else load_keyring(settings)

    async def run() -> int:
        pool = await database_opener(Settings())()
        try:
            return await rewrap_all(pool, ring)
        finally:
            await pool.close()

    count = asyncio.run(run())
    print(f"re-wrapped {count} loan data key(s) under {ring.active_key_id}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m privacy.keys", description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", help="the key ring file (default: OVERDUE_CODEC_KEYS_FILE or .state's)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("show", help="the source, the active key id and all key ids")
    for name, text in (("rotate", "add a new key and make it active"), ("add", "add a key, not active")):
        command = commands.add_parser(name, help=text)
        command.add_argument("--id", help="the new key's id (default: k<n+1>)")
    activate = commands.add_parser("activate", help="make a key of the ring the active one")
    activate.add_argument("key_id", metavar="ID")
    commands.add_parser("rewrap", help="re-wrap every live loan data key under the active key")
    args = parser.parse_args(argv)
    settings = CodecSettings()
    try:
        if args.command == "show":
            return _show(args, settings)
        if args.command == "rewrap":
            return _rewrap(args, settings)
        return _change(args, settings)
    except KeyRingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
