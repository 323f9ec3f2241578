from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import asyncpg
import pytest

from stack import migrate
from stack.migrate import MIGRATIONS_DIR, MigrationError, apply_migrations


async def test_first_run_applies_every_migration(empty_db: str) -> None:
    applied = await apply_migrations(empty_db)

    assert applied == [p.name for p in sorted(MIGRATIONS_DIR.glob("*.sql"))]
    assert applied[0] == "0001_init.sql"


async def test_second_run_applies_nothing(empty_db: str) -> None:
    await apply_migrations(empty_db)

    assert await apply_migrations(empty_db) == []


async def test_concurrent_runs_apply_each_migration_once(empty_db: str) -> None:
    results = await asyncio.gather(*(apply_migrations(empty_db) for _ in range(3)))

    assert sorted(len(r) for r in results) == [0, 0, len(list(MIGRATIONS_DIR.glob("*.sql")))]


async def test_migrations_are_recorded_in_schema_migrations(empty_db: str) -> None:
    applied = await apply_migrations(empty_db)

    connection = await asyncpg.connect(empty_db)
    try:
        rows = await connection.fetch("SELECT name FROM schema_migrations ORDER BY name")
        names = [r["name"] for r in rows]
    finally:
        await connection.close()
    assert names == applied


async def test_init_seeds_two_demo_agencies(empty_db: str) -> None:
    await apply_migrations(empty_db)

    connection = await asyncpg.connect(empty_db)
    try:
        count = await connection.fetchval("SELECT count(*) FROM agencies WHERE active")
    finally:
        await connection.close()
    assert count == 2


async def test_an_edited_applied_migration_is_an_error(empty_db: str, tmp_path: Path) -> None:
    shutil.copytree(MIGRATIONS_DIR, tmp_path, dirs_exist_ok=True)
    await apply_migrations(empty_db, tmp_path)
    first = tmp_path / "0001_init.sql"
    first.write_text(first.read_text(encoding="utf-8") + "\n-- edited\n", encoding="utf-8")

    with pytest.raises(MigrationError, match=r"0001_init\.sql"):
        await apply_migrations(empty_db, tmp_path)


async def test_a_failing_migration_leaves_nothing_behind(empty_db: str, tmp_path: Path) -> None:
    (tmp_path / "0001_broken.sql").write_text(
        "CREATE TABLE half_done (id int);\nSELECT * FROM no_such_table;\n", encoding="utf-8"
    )

    with pytest.raises(MigrationError, match=r"0001_broken\.sql"):
        await apply_migrations(empty_db, tmp_path)

    connection = await asyncpg.connect(empty_db)
    try:
        assert await connection.fetchval("SELECT to_regclass('half_done')") is None
        assert await connection.fetchval("SELECT count(*) FROM schema_migrations") == 0
    finally:
        await connection.close()


def test_cli_without_database_url_explains_what_to_set(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("OVERDUE_DATABASE_URL", raising=False)

    assert migrate.main() == 2
    assert "DATABASE_URL is not set" in capsys.readouterr().err
