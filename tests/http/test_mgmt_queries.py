"""Query parameters of the Management API lists that SDKs send (the auth0 SDK's users.list({q}),
resourceServers.list({identifiers}), fields, sort): answered exactly, or refused with 400 —
never silently ignored, which would widen a search to every record."""
import pytest

from kshttp import DEFAULT_CONNECTION, assert_error as assert_auth0_error, quote, unique_id

PASSWORD = "Correct-Horse-9-battery"


def assert_error(resp, status, code):
    """The Auth0 error shape, with this errorCode."""
    assert_auth0_error(resp, status)
    assert resp.json().get("errorCode") == code, resp.text


@pytest.fixture
def people(server):
    """A fresh tenant with three users (the second one named)."""
    tenant = unique_id("q")
    assert server.api("POST", "/tenants", json={"id": tenant}).status_code == 201
    users = []
    for i, extra in enumerate([{}, {"name": "Bea Search"}, {}]):
        r = server.api("POST", "/users", tenant=tenant, json={
            "email": f"p{i}-{unique_id('x')}@Example.com", "password": PASSWORD,
            "connection": DEFAULT_CONNECTION, **extra})
        assert r.status_code == 201, r.text
        users.append(r.json())
    return tenant, users


def users(server, tenant, **params):
    r = server.api("GET", "/users", tenant=tenant, params=params)
    return r


def test_search_by_email_user_id_and_name(server, people):
    tenant, us = people
    for q in (f'email:"{us[0]["email"]}"', f'email:{us[0]["email"].upper()}',
              f'user_id:"{us[0]["user_id"]}"'):
        r = users(server, tenant, q=q, search_engine="v3")
        assert r.status_code == 200, (q, r.text)
        assert [u["user_id"] for u in r.json()] == [us[0]["user_id"]], q
    r = users(server, tenant, q='name:"Bea Search"', include_totals="true")
    assert r.status_code == 200, r.text
    assert r.json()["total"] == 1 and r.json()["users"][0]["user_id"] == us[1]["user_id"]
    r = users(server, tenant, q='email:"nobody@example.com"', search_engine="v3")
    assert r.status_code == 200 and r.json() == []


@pytest.mark.parametrize("q", [
    'email:"a@example.com" AND name:"x"', "email:*@example.com", "app_metadata.plan:gold",
    "logins_count:[1 TO 5]", "justtext", 'email:"', "email:", "-email:a@example.com",
    'email:"a\\"b@example.com"'])
def test_unsupported_searches_are_400(server, people, q):
    tenant, _ = people
    r = users(server, tenant, q=q)
    assert_error(r, 400, "invalid_query_string")
    assert "unsupported search query" in r.json()["message"]


def test_search_conflicts_and_engines(server, people):
    tenant, us = people
    r = users(server, tenant, q=f'email:"{us[0]["email"]}"', email=us[0]["email"])
    assert_error(r, 400, "invalid_query_string")
    r = users(server, tenant, q=f'email:"{us[0]["email"]}"', search_engine="v1")
    assert_error(r, 400, "invalid_query_string")


def test_sort_by_creation_and_nothing_else(server, people):
    tenant, us = people
    ids = [u["user_id"] for u in us]
    assert [u["user_id"] for u in users(server, tenant, sort="created_at:1").json()] == ids
    assert [u["user_id"] for u in users(server, tenant, sort="created_at:-1").json()] == ids[::-1]
    r = users(server, tenant, sort="created_at:-1", per_page="2", page="0", include_totals="true")
    assert [u["user_id"] for u in r.json()["users"]] == ids[:0:-1] and r.json()["total"] == 3
    for bad in ("email:1", "created_at", "created_at:2"):
        assert_error(users(server, tenant, sort=bad), 400, "invalid_query_string")
    assert_error(users(server, tenant, sort="created_at:-1", take="2"), 400,
                 "invalid_query_string")
    r = server.api("GET", "/logs", tenant=tenant, params={"sort": "date:1", "per_page": "50"})
    assert r.status_code == 200, r.text
    oldest_first = r.json()
    r = server.api("GET", "/logs", tenant=tenant, params={"sort": "date:-1", "per_page": "50"})
    # Staff calls are audited: the second listing also holds its own entry, the newest.
    newest_first = r.json()
    assert newest_first[0]["type"] == "sapi" and newest_first[1:] == oldest_first[::-1]
    assert oldest_first[-1]["type"] == "sapi" and len(oldest_first) >= 2
    assert_error(server.api("GET", "/logs", tenant=tenant, params={"sort": "created_at:1"}), 400,
                 "invalid_query_string")


def test_fields_and_include_fields(server, people):
    tenant, us = people
    r = users(server, tenant, fields="user_id,email", include_fields="true")
    assert r.status_code == 200, r.text
    assert all(set(u) == {"user_id", "email"} for u in r.json()) and len(r.json()) == 3
    r = users(server, tenant, fields="identities,user_metadata", include_fields="false")
    assert all("identities" not in u and "email" in u for u in r.json())
    uid = us[0]["user_id"]
    r = server.api("GET", f"/users/{quote(uid)}", tenant=tenant, params={"fields": "email"})
    assert r.json() == {"email": us[0]["email"]}
    assert_error(users(server, tenant, fields="email", include_fields="yes"), 400,
                 "invalid_query_string")
    clients = server.api("GET", "/clients", tenant=tenant, params={"fields": "client_id,name"})
    assert clients.status_code == 200 and clients.json()
    assert all(set(c) == {"client_id", "name"} for c in clients.json())
    cid = clients.json()[0]["client_id"]
    r = server.api("GET", f"/clients/{cid}", tenant=tenant, params={"fields": "name"})
    assert set(r.json()) == {"name"}
    r = server.api("GET", "/logs", tenant=tenant, params={"fields": "type", "take": "1"})
    assert r.status_code == 200, r.text
    assert all(set(e) == {"type"} for e in r.json()["logs"])


def test_resource_servers_by_identifiers(server, people):
    tenant, _ = people
    made = []
    for i in range(3):
        ident = f"https://{unique_id('api')}.example/{i}"
        r = server.api("POST", "/resource-servers", tenant=tenant,
                       json={"identifier": ident, "name": f"API {i}"})
        assert r.status_code == 201, r.text
        made.append(ident)
    query = [("identifiers", made[2]), ("identifiers", made[0]),
             ("identifiers", "https://nope.example/")]
    r = server.api("GET", "/resource-servers", tenant=tenant, params=query)
    assert r.status_code == 200, r.text
    assert [a["identifier"] for a in r.json()] == [made[2], made[0]]
    r = server.api("GET", "/resource-servers", tenant=tenant,
                   params=query + [("include_totals", "true"), ("per_page", "1")])
    assert r.json()["total"] == 2 and [a["identifier"] for a in r.json()["resource_servers"]] == \
        [made[2]]
    everything = server.api("GET", "/resource-servers", tenant=tenant).json()
    assert len(everything) > 2  # the synced Management API too


def test_an_api_signs_with_its_tenants_algorithm(server):
    """An API's signing_alg is the tenant's: shown as such, another value refused (HS256 too).
    (That the tokens carry it: tests/clients/node/jose.test.js.)"""
    tenant = unique_id("alg")
    r = server.api("POST", "/tenants", json={"id": tenant, "signing_alg": "ES256"})
    assert r.status_code == 201, r.text
    ident = f"https://{unique_id('api')}.example/"
    for alg in ("RS256", "HS256"):
        r = server.api("POST", "/resource-servers", tenant=tenant,
                       json={"identifier": ident, "signing_alg": alg})
        assert_error(r, 400, "invalid_body")
        assert "ES256" in r.json()["message"]
    r = server.api("POST", "/resource-servers", tenant=tenant, json={"identifier": ident})
    assert r.status_code == 201 and r.json()["signing_alg"] == "ES256", r.text
    api_id = r.json()["id"]
    r = server.api("PATCH", f"/resource-servers/{api_id}", tenant=tenant,
                   json={"signing_alg": "HS256"})
    assert_error(r, 400, "invalid_body")
    r = server.api("PATCH", f"/resource-servers/{api_id}", tenant=tenant,
                   json={"signing_alg": "ES256", "name": "Same alg"})
    assert r.status_code == 200 and r.json()["signing_alg"] == "ES256", r.text
    # Synced control-plane APIs show the child's algorithm too.
    listed = server.api("GET", "/resource-servers", tenant=tenant).json()
    assert listed and all(a["signing_alg"] == "ES256" for a in listed)
