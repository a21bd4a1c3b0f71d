"""Tenant lifecycle records: every provision, suspend, resume, move and delete is one entry in
the control plane's log (`sapi`, or `fapi` with the failed step and the error) listing its steps
in order; a failed provision leaves nothing visible and the id free."""
import os

from kshttp import assert_error, unique_id

PROVISION_STEPS = ["registration", "tenant_record", "organization", "synced_entities", "defaults",
                   "active"]


def lifecycle_entries(server, tenant, operation=None):
    """Control-plane log entries of tenant lifecycle operations on `tenant`, oldest first."""
    r = server.api("GET", "/logs", params={"per_page": 100})
    assert r.status_code == 200, r.text
    out = [e for e in r.json()
           if e.get("details", {}).get("tenant_id") == tenant and "operation" in e["details"]
           and (operation is None or e["details"]["operation"] == operation)]
    return sorted(out, key=lambda e: e["date"])


def test_provision_records_every_step(server):
    tid = unique_id("life")
    assert server.api("POST", "/tenants", json={"id": tid}).status_code == 201
    [entry] = lifecycle_entries(server, tid, "provision")
    assert entry["type"] == "sapi"
    assert entry["details"]["steps"] == PROVISION_STEPS
    assert entry["details"]["succeeded"] is True


def test_suspend_resume_move_delete_are_recorded(server):
    tid = unique_id("life")
    assert server.api("POST", "/tenants", json={"id": tid}).status_code == 201
    assert server.api("POST", f"/tenants/{tid}/suspend").status_code == 200
    assert server.api("POST", f"/tenants/{tid}/resume").status_code == 200
    r = server.api("POST", f"/tenants/{tid}/move", json={"isolation": "database"})
    assert r.status_code == 200, r.text
    assert server.api("DELETE", f"/tenants/{tid}").status_code == 204
    ops = [(e["type"], e["details"]["operation"]) for e in lifecycle_entries(server, tid)]
    assert ops == [("sapi", "provision"), ("sapi", "suspend"), ("sapi", "resume"),
                   ("sapi", "move to database"), ("sapi", "delete")]
    [delete] = lifecycle_entries(server, tid, "delete")
    assert delete["details"]["steps"] == ["tenant_record", "organization", "data", "database",
                                          "keys"]


def test_failed_provision_leaves_nothing_and_is_recorded(server):
    """An organization that already holds the name makes the provision fail at the organization
    step: 409, no tenant record, no data, the registration dropped (so the id is free again)."""
    tid = unique_id("clash")
    r = server.api("POST", "/organizations", json={"name": tid})
    assert r.status_code == 201, r.text
    org_id = r.json()["id"]

    r = server.api("POST", "/tenants", json={"id": tid, "isolation": "database"})
    assert_error(r, 409)
    assert "organization" in r.json()["message"]
    assert_error(server.api("GET", f"/tenants/{tid}"), 404)
    assert_error(server.req("GET", "/.well-known/openid-configuration", tenant=tid), 404)
    assert tid not in {t["id"] for t in server.api("GET", "/tenants",
                                                   params={"per_page": 100}).json()}
    assert not os.path.exists(os.path.join(server.data_dir, "tenants", f"{tid}.db"))
    [entry] = lifecycle_entries(server, tid, "provision")
    assert entry["type"] == "fapi"
    assert entry["details"]["failed_step"] == "organization"
    assert entry["details"]["steps"] == ["database", "tenant_record", "organization"]
    assert "already exists" in entry["details"]["error"]

    # Once the name is free the same id provisions normally.
    assert server.api("DELETE", f"/organizations/{org_id}").status_code == 204
    r = server.api("POST", "/tenants", json={"id": tid, "isolation": "database"})
    assert r.status_code == 201, r.text
    assert os.path.exists(os.path.join(server.data_dir, "tenants", f"{tid}.db"))


def test_duplicate_is_a_recorded_failure_that_changes_nothing(server, new_tenant):
    tid = new_tenant()
    users_before = server.api("GET", "/clients", tenant=tid).json()
    assert_error(server.api("POST", "/tenants", json={"id": tid}), 409)
    assert server.api("GET", "/clients", tenant=tid).json() == users_before
    entries = lifecycle_entries(server, tid, "provision")
    assert [e["type"] for e in entries] == ["sapi", "fapi"]
    assert entries[1]["details"]["failed_step"] == "registration"


def test_database_that_cannot_be_created_is_503_and_leaves_nothing(start_server, tmp_path):
    """The isolated tenant's file cannot be created (the tenants directory is a file): the
    provision fails at its first step with a clear 503, and a shared tenant still works."""
    data = tmp_path / "data-broken"
    data.mkdir()
    (data / "tenants").write_text("not a directory")
    srv = start_server(data_dir=data)
    tid = unique_id("nodb")
    r = srv.api("POST", "/tenants", json={"id": tid, "isolation": "database"})
    assert_error(r, 503)
    assert_error(srv.api("GET", f"/tenants/{tid}"), 404)
    [entry] = lifecycle_entries(srv, tid, "provision")
    assert entry["type"] == "fapi" and entry["details"]["failed_step"] == "database"
    assert srv.api("POST", "/tenants", json={"id": tid}).status_code == 201
