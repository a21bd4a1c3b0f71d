"""An acknowledged write survives kill -9."""
import signal

from kshttp import DEFAULT_CONNECTION, quote, unique_id


def test_acknowledged_writes_survive_kill_9(start_server, tmp_path):
    data = tmp_path / "durable"
    srv = start_server(data_dir=data, name="before-kill")
    tid = unique_id("dur")
    assert srv.api("POST", "/tenants", json={"id": tid, "friendly_name": "Durable"}).status_code \
        == 201
    r = srv.api("POST", "/users", tenant=tid, json={
        "email": "durable@example.com", "password": "Correct-Horse-9-battery",
        "connection": DEFAULT_CONNECTION})
    assert r.status_code == 201, r.text
    uid = r.json()["user_id"]
    c = srv.api("POST", "/clients", tenant=tid, json={"name": "kept", "app_type": "spa"})
    assert c.status_code == 201, c.text
    cid = c.json()["client_id"]

    srv.proc.send_signal(signal.SIGKILL)
    assert srv.wait(10) == -signal.SIGKILL

    again = start_server(data_dir=data, name="after-kill")
    r = again.api("GET", f"/users/{quote(uid)}", tenant=tid)
    assert r.status_code == 200, r.text
    assert r.json()["email"] == "durable@example.com"
    assert again.api("GET", f"/clients/{cid}", tenant=tid).status_code == 200
    assert again.api("GET", f"/tenants/{tid}").json()["friendly_name"] == "Durable"


def test_restart_keeps_signing_keys(start_server, tmp_path):
    data = tmp_path / "keys"
    first = start_server(data_dir=data, name="first")
    jwks1 = first.req("GET", "/.well-known/jwks.json").json()
    assert first.stop() == 0
    second = start_server(data_dir=data, name="second")
    jwks2 = second.req("GET", "/.well-known/jwks.json").json()
    assert {k["kid"] for k in jwks1["keys"]} <= {k["kid"] for k in jwks2["keys"]}
