// /api/v2/users, /users/{id}/roles, /users/{id}/permissions, /users/{id}/organizations,
// /users-by-email.
#include "core/crypto/crypto.h"
#include "core/mgmt/common.h"
#include "core/model/ids.h"
#include "core/model/schema.h"
#include "core/model/user.h"
#include "core/oidc/email_flows.h"
#include "core/oidc/flow.h"
#include "core/tenancy/fallback.h"

namespace ks::mgmt {
namespace {

using model::Field;
using model::Type;

const model::Schema kCreate = {
    {"connection", Type::String, true, 128},
    {"email", Type::String, false, 320},
    {"password", Type::String, false, 1024},
    {"username", Type::String, false, 128},
    {"user_id", Type::String, false, 255},
    {"name", Type::String, false, 300},
    {"nickname", Type::String, false, 300},
    {"given_name", Type::String, false, 150},
    {"family_name", Type::String, false, 150},
    {"picture", Type::String, false, 2048},
    {"phone_number", Type::String, false, 32},
    {"email_verified", Type::Boolean},
    {"phone_verified", Type::Boolean},
    {"verify_email", Type::Boolean},
    {"blocked", Type::Boolean},
    {"user_metadata", Type::Object},
    {"app_metadata", Type::Object},
};
const model::Schema kUpdate = {
    {"connection", Type::String, false, 128}, {"email", Type::String, false, 320},
    {"password", Type::String, false, 1024},  {"username", Type::String, false, 128},
    {"name", Type::String, false, 300},       {"nickname", Type::String, false, 300},
    {"given_name", Type::String, false, 150}, {"family_name", Type::String, false, 150},
    {"picture", Type::String, false, 2048},   {"phone_number", Type::String, false, 32},
    {"email_verified", Type::Boolean},        {"phone_verified", Type::Boolean},
    {"verify_email", Type::Boolean},          {"blocked", Type::Boolean},
    {"user_metadata", Type::Object},          {"app_metadata", Type::Object},
};

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string checked_email(const Json& v) {
  std::string e = lower(v.get<std::string>());
  auto at = e.find('@');
  if (at == std::string::npos || at == 0 || at + 1 >= e.size() ||
      e.find_first_of(" \t\r\n<>") != std::string::npos || e.find('@', at + 1) != std::string::npos)
    model::invalid_body(
        "Payload validation error: 'Object didn't pass validation for format email: " +
        v.get<std::string>() + "' on property email.");
  return e;
}

// The same password rules as the hosted signup page: the connection's policy (with the control
// plane's fallback) and the tenant's password_min_length. 400 PasswordStrengthError. A
// connection that does not exist is left to the caller's own 400.
void check_password(Ctx& ctx, const std::string& connection, const std::string& pw) {
  std::optional<Json> con;
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
    con = tenancy::effective_connection(*ctx.state, tx, connection);
  });
  if (!con) return;
  if (auto err = oidc::password_policy_error(*con, ctx.state->settings, pw))
    throw http::HttpError{400, "PasswordStrengthError: " + *err, "password_strength_error"};
}

// Auth0 merges metadata at the top level; a null value removes the key.
void merge_metadata(Json& target, const Json& patch) {
  if (!target.is_object()) target = Json::object();
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    if (it->is_null())
      target.erase(it.key());
    else
      target[it.key()] = *it;
  }
}

Json user_view(const Json& d) { return public_view(d); }

store::Record connection_named(store::Tx& tx, const std::string& name) {
  auto con = tx.find("connection", name);
  if (!con) throw http::HttpError{400, "The connection does not exist", "inexistent_connection"};
  return std::move(*con);
}

http::Response create_user(Ctx& ctx) {
  authorize(ctx, "create:users");
  Json body = ctx.json_body();
  kCreate.check(body);
  const std::string connection = body["connection"].get<std::string>();
  std::string email;
  if (body.contains("email")) email = checked_email(body["email"]);
  std::string hash;
  if (body.contains("password")) {
    check_password(ctx, connection, body["password"].get<std::string>());
    hash = crypto::password_hash(body["password"].get<std::string>(), ctx.e.rng());
  }
  const std::string now = now_iso(ctx);
  std::string user_id = model::new_user_id(ctx.e.rng());
  if (body.contains("user_id")) user_id = "auth0|" + body["user_id"].get<std::string>();
  Json user;
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    auto con = connection_named(tx, connection);
    const std::string strategy = con.data.value("strategy", "");
    if (strategy == "auth0") {
      if (email.empty())
        model::invalid_body("Payload validation error: 'Missing required property: email'.");
      if (hash.empty())
        model::invalid_body("Payload validation error: 'Missing required property: password'.");
    }
    user = model::new_user({user_id, connection, strategy, false, email, now});
    for (const char* k :
         {"email_verified", "blocked", "user_metadata", "app_metadata", "username", "name",
          "nickname", "given_name", "family_name", "picture", "phone_number", "phone_verified"})
      if (body.contains(k)) user[k] = body[k];
    if (!hash.empty()) user["_password"] = hash;
    if (tx.get("user", user_id)) throw http::HttpError{409, "The user already exists.", "conflict"};
    try {
      tx.insert("user", user_id, user, model::user_key(connection, email));
    } catch (const store::Conflict&) {
      throw http::HttpError{409, "The user already exists.", "conflict"};
    }
  });
  // verify_email: true sends the verification email (Auth0's flag; unverified users only).
  if (body.value("verify_email", false) && !user.value("email_verified", false) &&
      user.contains("email"))
    oidc::queue_verification_email(ctx, user_id, {});
  return http::Response::json(201, user_view(user));
}

http::Response get_user(Ctx& ctx) {
  authorize(ctx, "read:users");
  Json out;
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
    out = user_view(must_get(tx, "user", ctx.param("id")).data);
  });
  return http::Response::json(200, project_fields(ctx, std::move(out)));
}

http::Response list_users(Ctx& ctx) {
  authorize(ctx, "read:users");
  store::ListQuery filter;
  auto search = search_clause(ctx, {"email", "user_id", "name", "nickname", "username",
                                    "given_name", "family_name", "phone_number"});
  if (auto email = ctx.query.get("email")) {
    if (search)
      throw http::HttpError{400, "Query validation error: use either 'email' or 'q', not both",
                            "invalid_query_string"};
    search = std::make_pair(std::string("email"), *email);
  }
  if (search) {
    filter.field = search->first;
    // Emails are stored in lower case and match whatever the case asked.
    filter.value = search->first == "email" ? lower(search->second) : search->second;
  }
  return list_records(ctx, "user", "users", user_view, filter);
}

http::Response users_by_email(Ctx& ctx) {
  authorize(ctx, "read:users");
  auto email = ctx.query.get("email");
  if (!email || email->empty())
    throw http::HttpError{400, "Query validation error: 'email' is required",
                          "invalid_query_string"};
  store::ListQuery q;
  q.field = "email";
  q.value = lower(*email);
  q.limit = 100;
  Json out = Json::array();
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
    for (const auto& r : tx.list("user", q)) out.push_back(user_view(r.data));
  });
  return http::Response::json(200, out);
}

http::Response update_user(Ctx& ctx) {
  authorize(ctx, "update:users");
  Json body = ctx.json_body();
  kUpdate.check(body, true);
  std::string hash;
  if (body.contains("password")) {
    std::string connection;
    ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
      connection =
          must_get(tx, "user", ctx.param("id")).data["identities"][0].value("connection", "");
    });
    check_password(ctx, connection, body["password"].get<std::string>());
    hash = crypto::password_hash(body["password"].get<std::string>(), ctx.e.rng());
  }
  Json out;
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    Json user = must_get(tx, "user", ctx.param("id")).data;
    const std::string connection = user["identities"][0].value("connection", "");
    if (body.contains("connection") && body["connection"].get<std::string>() != connection)
      model::invalid_body("The user does not belong to connection " +
                          body["connection"].get<std::string>());
    for (const char* k : {"username", "name", "nickname", "given_name", "family_name", "picture",
                          "phone_number", "phone_verified", "email_verified", "blocked"})
      if (body.contains(k)) user[k] = body[k];
    if (body.contains("email")) user["email"] = checked_email(body["email"]);
    if (body.contains("user_metadata"))
      merge_metadata(user["user_metadata"], body["user_metadata"]);
    if (body.contains("app_metadata")) merge_metadata(user["app_metadata"], body["app_metadata"]);
    if (!hash.empty()) user["_password"] = hash;
    user["updated_at"] = now_iso(ctx);
    const std::string email = user.value("email", "");
    try {
      tx.update("user", ctx.param("id"), user, model::user_key(connection, email));
    } catch (const store::Conflict&) {
      throw http::HttpError{409, "The specified new email already exists", "conflict"};
    }
    out = user_view(user);
  });
  return http::Response::json(200, out);
}

http::Response delete_user(Ctx& ctx) {
  authorize(ctx, "delete:users");
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    must_get(tx, "user", ctx.param("id"));
    purge_user(tx, ctx.param("id"));
  });
  return http::Response::empty(204);
}

std::optional<Json> role_of_link(store::Tx& tx, const store::Link& l) {
  auto r = tx.get("role", l.to);
  if (!r) return std::nullopt;
  return Json{{"id", r->id},
              {"name", r->data.value("name", "")},
              {"description", r->data.value("description", "")}};
}

http::Response user_roles(Ctx& ctx) {
  authorize(ctx, "read:users");
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) { must_get(tx, "user", ctx.param("id")); });
  return list_links(ctx, "user_role", ctx.param("id"), "roles", role_of_link);
}

http::Response change_user_roles(Ctx& ctx, bool add) {
  authorize(ctx, add ? "create:role_members" : "delete:role_members");
  auto roles = id_list(ctx.json_body(), "roles");
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    must_get(tx, "user", ctx.param("id"));
    for (const auto& r : roles) {
      must_get(tx, "role", r);
      if (add)
        tx.link("user_role", ctx.param("id"), r);
      else
        tx.unlink("user_role", ctx.param("id"), r);
    }
  });
  return http::Response::empty(204);
}

http::Response user_permissions(Ctx& ctx) {
  authorize(ctx, "read:users");
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) { must_get(tx, "user", ctx.param("id")); });
  return list_links(ctx, "user_permission", ctx.param("id"), "permissions",
                    [](store::Tx& tx, const store::Link& l) -> std::optional<Json> {
                      return permission_view(tx, l.to);
                    });
}

http::Response change_user_permissions(Ctx& ctx, bool add) {
  authorize(ctx, "update:users");
  Json body = ctx.json_body();
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    must_get(tx, "user", ctx.param("id"));
    for (const auto& key : permission_keys(tx, body)) {
      if (add)
        tx.link("user_permission", ctx.param("id"), key);
      else
        tx.unlink("user_permission", ctx.param("id"), key);
    }
  });
  return http::Response::empty(204);
}

http::Response user_organizations(Ctx& ctx) {
  authorize(ctx, "read:organizations");
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) { must_get(tx, "user", ctx.param("id")); });
  return list_links(
      ctx, "org_member", ctx.param("id"), "organizations",
      [](store::Tx& tx, const store::Link& l) -> std::optional<Json> {
        auto org = tx.get("organization", l.from);
        if (!org) return std::nullopt;
        return public_view(org->data);
      },
      true);
}

}  // namespace

void register_user_routes(Routes& r) {
  r.add("GET", "/api/v2/users", list_users);
  r.add("POST", "/api/v2/users", create_user);
  r.add("GET", "/api/v2/users-by-email", users_by_email);
  r.add("GET", "/api/v2/users/:id", get_user);
  r.add("PATCH", "/api/v2/users/:id", update_user);
  r.add("DELETE", "/api/v2/users/:id", delete_user);
  r.add("GET", "/api/v2/users/:id/roles", user_roles);
  r.add("POST", "/api/v2/users/:id/roles", [](Ctx& c) { return change_user_roles(c, true); });
  r.add("DELETE", "/api/v2/users/:id/roles", [](Ctx& c) { return change_user_roles(c, false); });
  r.add("GET", "/api/v2/users/:id/permissions", user_permissions);
  r.add("POST", "/api/v2/users/:id/permissions",
        [](Ctx& c) { return change_user_permissions(c, true); });
  r.add("DELETE", "/api/v2/users/:id/permissions",
        [](Ctx& c) { return change_user_permissions(c, false); });
  r.add("GET", "/api/v2/users/:id/organizations", user_organizations);
}

}  // namespace ks::mgmt
