"""The one vocabulary module agrees with the database, and the code reads it from there."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import text

from geo_api import layers, vocabulary

ROOT = Path(__file__).resolve().parents[1]


def test_every_database_enum_is_in_the_vocabulary_in_order(engine):
    with engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)
            FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
            JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = 'public'
            GROUP BY t.typname""")).all()
    assert {name: tuple(labels) for name, labels in rows} == vocabulary.DB_ENUMS


def test_catalogue_enums_come_from_the_vocabulary():
    known = set(map(tuple, vocabulary.DB_ENUMS.values())) | {vocabulary.COUNTRIES, vocabulary.NEIGHBOURS}
    enums = [(layer.name, name, p.enum) for layer in layers.LAYERS for name, p in layer.properties.items() if p.enum]
    assert enums and all(values in known for _, _, values in enums), enums


def test_no_module_spells_out_a_vocabulary_again():
    """The road statuses, roles and ledger kinds are written once (geo_api/vocabulary.py);
    the migrations keep their own copy, as a migration must not change afterwards."""
    pattern = re.compile(r"""["']surveyed["'],\s*["']funded["'],\s*["']under_construction["']|"""
                         r"""["']planner["'],\s*["']post["'],\s*["']donor["']|"""
                         r"""["']commitment["'],\s*["']disbursement["'],\s*["']expenditure["']""")
    found = sorted(str(p.relative_to(ROOT)) for folder in ("geo_api", "web_map") for p in (ROOT / folder).rglob("*.py")
                   if pattern.search(p.read_text(encoding="utf-8")))
    assert found == ["geo_api/vocabulary.py"], found
