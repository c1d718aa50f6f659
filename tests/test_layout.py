"""How the code is laid out: domain rules free of the web framework, tests free of each other."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PURE = ["geo_api.errors", "geo_api.auth", "geo_api.layers", "geo_api.policy", "geo_api.vocabulary",
        "geo_api.settings"] + sorted(
    f"geo_api.domain.{p.stem}" for p in (ROOT / "geo_api" / "domain").glob("*.py") if p.stem != "__init__")


def test_domain_modules_import_no_web_framework():
    """Importing every domain module (and the catalogue, policy, errors, accounts) loads
    neither FastAPI nor Starlette: rules are plain functions, testable without HTTP."""
    code = ("import importlib, sys\n"
            f"for name in {PURE!r} + ['geo_api.domain.planner']:\n"
            "    importlib.import_module(name)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_no_test_module_imports_another():
    """Shared test helpers live in tests/support, not in test modules."""
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("test_*.py")
                 for line in p.read_text(encoding="utf-8").splitlines()
                 if line.lstrip().startswith(("from test_", "import test_"))]
    assert offenders == []
