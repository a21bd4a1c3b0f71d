"""KeysteadError and its subclasses, mapped from the C ABI's codes and error bodies."""
import pytest

from keystead import (AuthError, Engine, ExistsError, ForbiddenError, InvalidError,
                      KeysteadError, NotFoundError)

from conftest import DB, PASSWORD, unique


def test_not_found_carries_the_auth0_body(engine: Engine):
    with pytest.raises(NotFoundError) as e:
        engine.users.get("auth0|000000000000000000000000")
    err = e.value
    assert isinstance(err, LookupError) and isinstance(err, KeysteadError)
    assert err.code == -3 and err.status == 404 and err.error_code == "inexistent_user"
    assert err.body == {"statusCode": 404, "error": "Not Found", "errorCode": "inexistent_user",
                        "message": "The user does not exist."}
    assert err.message == str(err) == "The user does not exist."


def test_a_duplicate_tenant_is_exists_error(engine: Engine):
    tid = unique("dup")
    engine.tenants.create(id=tid)
    with pytest.raises(ExistsError) as e:
        engine.tenants.create(id=tid)
    assert e.value.code == -4 and e.value.status == 409
    assert tid in e.value.message and e.value.body["statusCode"] == 409


@pytest.mark.parametrize("call", [
    lambda e: e.users.create(connection=DB, email="not-an-email", password=PASSWORD),
    lambda e: e.roles.create(name="r", unknown_member=1),
    lambda e: e.tenants.create(id="Not Valid"),
    lambda e: e.tenants.create(id="admin"),  # reserved
    lambda e: e.organizations.add_members("org_nope", []),
])
def test_an_invalid_body_is_invalid_error(engine: Engine, call):
    with pytest.raises(InvalidError) as e:
        call(engine)
    err = e.value
    assert isinstance(err, ValueError)
    assert err.code == -2 and err.status == 400 and err.body["statusCode"] == 400
    assert err.error_code and err.message == err.body["message"]


def test_an_invalid_json_value_is_invalid_error(engine: Engine):
    with pytest.raises(TypeError):  # not JSON-serializable: caught before C
        engine.manage("POST", "/roles", {"name": object()})
    with pytest.raises(InvalidError, match="Payload validation error"):
        engine.manage("POST", "/roles", ["not", "an", "object"])


def test_a_blocked_user_is_forbidden(engine: Engine):
    email = f"{unique('blocked')}@example.com"
    user = engine.users.create(connection=DB, email=email, password=PASSWORD)
    engine.users.update(user["user_id"], blocked=True)
    with pytest.raises(ForbiddenError) as e:
        engine.check_password(email, PASSWORD)
    assert e.value.code == -6 and e.value.body is None and e.value.message == "user is blocked"


def test_a_forbidden_management_call(engine: Engine):
    """Deleting the control plane is refused with 403."""
    with pytest.raises(ForbiddenError) as e:
        engine.tenants.delete("control_plane")
    assert e.value.status == 403 and e.value.code == -6


def test_oauth_errors_carry_status_and_error(engine: Engine):
    with pytest.raises(AuthError) as e:
        engine.tokens.issue(grant_type="client_credentials", client_id="nope",
                            client_secret="nope", audience="urn:keystead:management")
    err = e.value
    assert err.status == 401 and err.error_code == "invalid_client"
    assert err.message == err.body["error_description"]
    with pytest.raises(InvalidError) as e:
        engine.tokens.issue(grant_type="no_such_grant")
    assert e.value.status == 400 and e.value.error_code == "unsupported_grant_type"


def test_a_plain_text_error(engine: Engine):
    with pytest.raises(AuthError) as e:
        engine.tokens.verify("not-a-jwt")
    assert e.value.body is None and e.value.status is None and e.value.error_code is None
    assert e.value.message == str(e.value) and e.value.message
    assert "AuthError(code=-5" in repr(e.value)
