"""The OC4IDS export validates against the 0.9 schema shipped in data/oc4ids-0.9, offline,
and maps the tracker's roads, ledger, parties and ceremonies as DESIGN.md says."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from jsonschema import Draft4Validator, FormatChecker
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT4
from sqlalchemy import text

from geo_api import DATA_DIR
from geo_api.domain import oc4ids

SCHEMA_DIR = DATA_DIR / "oc4ids-0.9"
STATUS_MAP = {
    "proposed": "identification", "surveyed": "preparation", "funded": "preparation",
    "under_construction": "implementation", "completed": "completion", "inaugurated": "completion",
    "cancelled": "cancelled",
}


def _offline(uri: str):
    raise Unresolvable(uri)  # every $ref must resolve to the local files: no network


@pytest.fixture(scope="module")
def validator() -> Draft4Validator:
    """The package schema, with the project schema's published URL mapped to the local copy."""
    package = json.loads((SCHEMA_DIR / "project-package-schema.json").read_text(encoding="utf-8"))
    project = json.loads((SCHEMA_DIR / "project-schema.json").read_text(encoding="utf-8"))
    registry = Registry(retrieve=_offline).with_resources([
        (project["id"], Resource(project, DRAFT4)), (package["id"], Resource(package, DRAFT4))])
    checker = FormatChecker()

    @checker.checks("date-time", raises=ValueError)
    def _date_time(value) -> bool:  # RFC 3339 with an explicit offset
        return not isinstance(value, str) or (
            "T" in value and dt.datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is not None)

    @checker.checks("uri")
    def _uri(value) -> bool:
        return not isinstance(value, str) or value.startswith(("http://", "https://"))

    Draft4Validator.check_schema(package)
    Draft4Validator.check_schema(project)
    return Draft4Validator(package, registry=registry, format_checker=checker)


def errors(validator: Draft4Validator, doc: dict) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in validator.iter_errors(doc)]


def test_schema_files_are_shipped_with_their_licence():
    for name in ("LICENSE", "README.md", "project-schema.json", "project-package-schema.json",
                 "codelists/projectStatus.csv"):
        assert (SCHEMA_DIR / name).is_file(), name


def test_the_whole_package_validates(client, validator, demo_counts):
    r = client.get("/api/export/oc4ids")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    package = r.json()
    assert errors(validator, package) == []
    assert len(package["projects"]) == demo_counts["branch_road"]
    assert package["version"] == "0.9" and package["uri"].endswith("/api/export/oc4ids")
    assert len({p["id"] for p in package["projects"]}) == len(package["projects"])


def test_the_validator_catches_a_broken_package(client, validator):
    package = client.get("/api/export/oc4ids", params={"marker": "1033"}).json()
    package["projects"][0]["status"] = "under_construction"      # not an OC4IDS status
    package["projects"][0]["budget"]["amount"]["currency"] = "đồng"
    del package["publisher"]
    found = "\n".join(errors(validator, package))
    assert "'publisher' is a required property" in found
    assert "projects/0/status" in found and "projects/0/budget/amount/currency" in found


def test_filtered_packages_validate_and_status_follows_design(client, validator, engine):
    for status, phase in STATUS_MAP.items():
        package = client.get("/api/export/oc4ids", params={"status": status}).json()
        assert errors(validator, package) == []
        assert {p["status"] for p in package["projects"]} == {phase}, status
    with engine.connect() as conn:
        suspended = conn.execute(text("""
            SELECT r.code, (SELECT e.from_status::text FROM road_event e WHERE e.road_id = r.id
                            AND e.to_status = 'suspended' ORDER BY e.occurred_at DESC, e.id DESC LIMIT 1)
            FROM branch_road r WHERE r.status = 'suspended'""")).all()
    assert suspended
    package = client.get("/api/export/oc4ids", params={"status": "suspended"}).json()
    assert errors(validator, package) == []
    by_code = {p["identifiers"][0]["id"]: p for p in package["projects"]}
    for code, before in suspended:
        assert by_code[code]["status"] == STATUS_MAP.get(before or "under_construction")
        assert "suspended" in by_code[code]["description"]


def test_dao_vien_road_maps_money_parties_locations_milestones_and_completion(client, validator, engine):
    package = client.get("/api/export/oc4ids", params={"marker": "1033"}).json()
    assert errors(validator, package) == []
    (project,) = package["projects"]
    assert project["id"] == f"{oc4ids.ID_PREFIX}DN-LS-0001" and project["status"] == "completion"
    with engine.connect() as conn:
        road = conn.execute(text("SELECT id, estimated_cost, completed_on FROM branch_road "
                                 "WHERE code = 'DN-LS-0001'")).one()
        committed = dict(conn.execute(text("""
            SELECT d.code, sum(f.amount) FROM funding_tx f JOIN donor d ON d.id = f.donor_id
            WHERE f.road_id = :r AND f.kind = 'commitment' GROUP BY d.code"""), {"r": road.id}).all())
        disbursements = conn.execute(text("SELECT count(*), sum(amount) FROM funding_tx "
                                          "WHERE road_id = :r AND kind = 'disbursement'"), {"r": road.id}).one()
    assert project["budget"]["amount"] == {"amount": road.estimated_cost, "currency": "VND"}
    finance = {f["financingParty"]["id"].removeprefix("donor-"): f["value"]["amount"]
               for f in project["budget"]["finance"]}
    assert finance == committed and all(f["type"] == "grant" for f in project["budget"]["finance"])
    roles = {p["id"]: p["roles"] for p in project["parties"]}
    assert "publicAuthority" in roles["post-BP-BINH-NGHI"]
    assert project["publicAuthority"]["id"] == "post-BP-BINH-NGHI"
    assert "LS-SO-KHDT" in committed and "funder" in roles["donor-LS-SO-KHDT"]
    incoming = [t for t in project.get("transactions", []) if t.get("payee", {}).get("id") == "post-BP-BINH-NGHI"]
    assert len(incoming) == disbursements[0] and sum(t["value"]["amount"] for t in incoming) == disbursements[1]
    kinds = {loc["id"]: loc["geometry"]["type"] for loc in project["locations"]}
    assert kinds == {"road": "LineString", "marker-1033": "Point"}
    milestones = {m["id"]: m for m in project["milestones"]}
    assert milestones["commissioning"]["code"] == "commissioning"
    assert milestones["commissioning"]["status"] == "met"
    assert milestones["commissioning"]["dateMet"] == "2022-11-16T00:00:00+07:00"
    assert milestones["completion"]["dateMet"] == f"{road.completed_on}T00:00:00+07:00"
    assert project["completion"]["endDate"] == f"{road.completed_on}T00:00:00+07:00"


def test_a_road_not_yet_built_has_a_scheduled_completion_and_no_completion_block(client, validator):
    package = client.get("/api/export/oc4ids", params={"status": "funded"}).json()
    for project in package["projects"]:
        assert "completion" not in project
        for m in project.get("milestones", []):
            if m["id"] == "completion":
                assert m["status"] == "scheduled" and "dueDate" in m and "dateMet" not in m
            assert m["id"] != "commissioning"


def test_package_refusals(client):
    r = client.get("/api/export/oc4ids", params={"colour": "red"})
    assert r.status_code == 422 and "colour: unknown query parameter" in r.json()["message"]
    r = client.get("/api/export/oc4ids", params={"status": "paved"})
    assert r.status_code == 422
    r = client.get("/api/export/oc4ids", params={"marker": "does-not-exist"})
    assert r.status_code == 404 and "at least one project" in r.json()["message"]
