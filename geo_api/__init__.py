"""Border-support project tracker: branch roads to Viet Nam's border markers."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "data"
MIGRATIONS_DIR = ROOT / "migrations"
