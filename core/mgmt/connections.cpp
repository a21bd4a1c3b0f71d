// /api/v2/connections. Secret option values are write-only: they are sealed into a private
// member and responses carry `<key>_hint` masks instead.
#include <regex>

#include "core/mgmt/common.h"
#include "core/model/ids.h"
#include "core/model/schema.h"
#include "core/tenancy/fallback.h"

namespace ks::mgmt {
namespace {

using model::Type;

const model::Schema kCreate = {
    {"name", Type::String, true, 128},
    {"strategy", Type::String, true, 64},
    {"display_name", Type::String, false, 128},
    {"options", Type::Object},
    {"enabled_clients", Type::StringArray, false, 1000},
    {"realms", Type::StringArray, false, 10},
    {"is_domain_connection", Type::Boolean},
    {"show_as_button", Type::Boolean},
    {"metadata", Type::Object},
};
const model::Schema kUpdate = {
    {"display_name", Type::String, false, 128},
    {"options", Type::Object},
    {"enabled_clients", Type::StringArray, false, 1000},
    {"realms", Type::StringArray, false, 10},
    {"is_domain_connection", Type::Boolean},
    {"show_as_button", Type::Boolean},
    {"metadata", Type::Object},
};

const char* const kStrategies[] = {"auth0", "oidc",  "oauth2", "google-oauth2", "github", "samlp",
                                   "waad",  "email", "sms"};
const char* const kSecretOptions[] = {"client_secret", "secret",     "password",      "api_key",
                                      "private_key",   "app_secret", "signing_secret"};

bool is_secret(const std::string& key) {
  for (const char* s : kSecretOptions)
    if (key == s) return true;
  return false;
}

// Moves secret option values out of `options` into the sealed blob (merged over `previous`).
void seal_secrets(Ctx& ctx, const std::string& id, Json& options, Json& record) {
  Json secrets = Json::object();
  if (record.contains("_secrets")) {
    if (auto open = ctx.e.open(record["_secrets"].get<std::string>(),
                               tenancy::connection_aad(ctx.tenant, id)))
      secrets = Json::parse(*open, nullptr, false);
    if (!secrets.is_object()) secrets = Json::object();
  }
  Json hints = Json::object();
  for (auto it = options.begin(); it != options.end();) {
    if (is_secret(it.key())) {
      if (it->is_null())
        secrets.erase(it.key());
      else
        secrets[it.key()] = *it;
      it = options.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = secrets.begin(); it != secrets.end(); ++it)
    options[it.key() + "_hint"] =
        secret_hint(it->is_string() ? it->get<std::string>() : it->dump());
  record["_secrets"] = ctx.e.seal(secrets.dump(), tenancy::connection_aad(ctx.tenant, id));
}

void check_name(const std::string& name) {
  static const std::regex kName("^[a-zA-Z0-9](-?[a-zA-Z0-9])*$");
  if (!std::regex_match(name, kName))
    model::invalid_body(
        "Payload validation error: 'String does not match pattern "
        "^[a-zA-Z0-9](-?[a-zA-Z0-9])*$' on property name.");
}

http::Response create_connection(Ctx& ctx) {
  authorize(ctx, "create:connections");
  Json body = ctx.json_body();
  kCreate.check(body);
  const std::string name = body["name"].get<std::string>();
  check_name(name);
  const std::string strategy = body["strategy"].get<std::string>();
  bool known = false;
  for (const char* s : kStrategies) known = known || strategy == s;
  if (!known) model::invalid_body("Payload validation error: 'Invalid strategy " + strategy + "'.");
  const std::string id = model::new_prefixed_id("con", ctx.e.rng());
  Json options = body.value("options", Json::object());
  Json con = {{"id", id},
              {"name", name},
              {"strategy", strategy},
              {"display_name", body.value("display_name", name)},
              {"enabled_clients", body.value("enabled_clients", Json::array())},
              {"realms", body.value("realms", Json::array({name}))},
              {"is_domain_connection", body.value("is_domain_connection", false)},
              {"metadata", body.value("metadata", Json::object())},
              {"created_at", now_iso(ctx)}};
  if (body.contains("show_as_button")) con["show_as_button"] = body["show_as_button"];
  seal_secrets(ctx, id, options, con);
  con["options"] = options;
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    try {
      tx.insert("connection", id, con, name);
    } catch (const store::Conflict&) {
      throw http::HttpError{409, "A connection with the same name already exists",
                            "connection_conflict"};
    }
  });
  return http::Response::json(201, public_view(con));
}

http::Response list_connections(Ctx& ctx) {
  authorize(ctx, "read:connections");
  store::ListQuery filter;
  if (auto s = ctx.query.get("strategy")) {
    filter.field = "strategy";
    filter.value = *s;
  } else if (auto n = ctx.query.get("name")) {
    filter.field = "name";
    filter.value = *n;
  }
  return list_records(ctx, "connection", "connections", public_view, filter);
}

http::Response get_connection(Ctx& ctx) {
  authorize(ctx, "read:connections");
  Json out;
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
    out = public_view(must_get(tx, "connection", ctx.param("id")).data);
  });
  return http::Response::json(200, out);
}

http::Response update_connection(Ctx& ctx) {
  authorize(ctx, "update:connections");
  Json body = ctx.json_body();
  kUpdate.check(body, true);
  Json out;
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    auto rec = must_get(tx, "connection", ctx.param("id"));
    Json con = rec.data;
    for (auto it = body.begin(); it != body.end(); ++it)
      if (it.key() != "options") con[it.key()] = *it;
    if (body.contains("options")) {
      // Auth0 replaces options whole; secrets not mentioned are kept (they cannot be read back).
      Json options = body["options"];
      for (auto it = options.begin(); it != options.end();) {
        if (it.key().ends_with("_hint"))
          it = options.erase(it);
        else
          ++it;
      }
      seal_secrets(ctx, rec.id, options, con);
      con["options"] = options;
    }
    tx.update("connection", rec.id, con, con["name"].get<std::string>());
    out = public_view(con);
  });
  return http::Response::json(200, out);
}

http::Response delete_connection(Ctx& ctx) {
  authorize(ctx, "delete:connections");
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    must_get(tx, "connection", ctx.param("id"));
    tx.remove("connection", ctx.param("id"));
  });
  return http::Response::empty(204);
}

}  // namespace

void register_connection_routes(Routes& r) {
  r.add("GET", "/api/v2/connections", list_connections);
  r.add("POST", "/api/v2/connections", create_connection);
  r.add("GET", "/api/v2/connections/:id", get_connection);
  r.add("PATCH", "/api/v2/connections/:id", update_connection);
  r.add("DELETE", "/api/v2/connections/:id", delete_connection);
}

}  // namespace ks::mgmt
