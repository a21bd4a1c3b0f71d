// /api/v2/clients and /clients/{id}/rotate-secret. Secrets are sealed under the master key and
// returned only by create and rotate-secret.
#include "core/mgmt/common.h"
#include "core/model/ids.h"
#include "core/model/schema.h"

namespace ks::mgmt {
namespace {

using model::Type;

#define KS_CLIENT_FIELDS                                                                           \
  {"description", Type::String, false, 140}, {"app_type", Type::String},                           \
      {"logo_uri", Type::String, false, 2048}, {"is_first_party", Type::Boolean},                  \
      {"oidc_conformant", Type::Boolean}, {"callbacks", Type::StringArray, false, 100},            \
      {"allowed_origins", Type::StringArray, false, 100},                                          \
      {"web_origins", Type::StringArray, false, 100},                                              \
      {"allowed_logout_urls", Type::StringArray, false, 100},                                      \
      {"grant_types", Type::StringArray, false, 20}, {"token_endpoint_auth_method", Type::String}, \
      {"jwt_configuration", Type::Object}, {"refresh_token", Type::Object},                        \
      {"client_metadata", Type::Object}, {"organization_usage", Type::String},                     \
      {"organization_require_behavior", Type::String},                                             \
      {"initiate_login_uri", Type::String, false, 2048},                                           \
      {"cross_origin_authentication", Type::Boolean}, {                                            \
    "sso", Type::Boolean                                                                           \
  }

const model::Schema kCreate = {
    {"name", Type::String, true, 255},
    {"client_id", Type::String, false, 64},
    {"client_secret", Type::String, false, 256},
    KS_CLIENT_FIELDS,
};
const model::Schema kUpdate = {
    {"name", Type::String, false, 255},
    KS_CLIENT_FIELDS,
};
#undef KS_CLIENT_FIELDS

const char* const kAppTypes[] = {"native", "spa", "regular_web", "non_interactive"};
const char* const kAuthMethods[] = {"none", "client_secret_post", "client_secret_basic"};
const char* const kGrantTypes[] = {
    "authorization_code", "implicit", "refresh_token",
    "client_credentials", "password", "http://auth0.com/oauth/grant-type/password-realm"};

template <size_t N>
void check_enum(const Json& body, const char* member, const char* const (&allowed)[N]) {
  if (!body.contains(member)) return;
  const std::string v = body[member].get<std::string>();
  for (const char* a : allowed)
    if (v == a) return;
  model::invalid_body("Payload validation error: 'Invalid value " + v + "' on property " + member +
                      ".");
}

void check(const Json& body) {
  check_enum(body, "app_type", kAppTypes);
  check_enum(body, "token_endpoint_auth_method", kAuthMethods);
  for (const auto& g : body.value("grant_types", Json::array())) {
    bool ok = false;
    for (const char* a : kGrantTypes) ok = ok || g.get<std::string>() == a;
    if (!ok)
      model::invalid_body("Payload validation error: 'Invalid grant type " + g.get<std::string>() +
                          "'.");
  }
  for (const char* list : {"callbacks", "allowed_logout_urls"})
    for (const auto& u : body.value(list, Json::array())) {
      const auto& s = u.get_ref<const std::string&>();
      if (s.find("://") == std::string::npos)
        model::invalid_body("Payload validation error: '" + s +
                            "' is not a valid URL on property " + list + ".");
    }
}

Json client_view(const Json& d) { return public_view(d); }

std::string seal_secret(EngineImpl& e, std::string_view tenant, const std::string& client_id,
                        const std::string& secret) {
  return e.seal(secret, std::string(tenant) + "\n" + client_id);
}

}  // namespace

Json build_client(EngineImpl& e, std::string_view tenant, const Json& body,
                  std::string* secret_out) {
  auto& rng = e.rng();
  const std::string app_type = body.value("app_type", "regular_web");
  const bool is_public = app_type == "spa" || app_type == "native";
  const std::string client_id = body.value("client_id", model::new_client_id(rng));
  const std::string secret = body.value("client_secret", model::new_client_secret(rng));
  Json grants = body.value("grant_types", Json());
  if (grants.is_null()) {
    grants = app_type == "non_interactive" ? Json::array({"client_credentials"})
             : is_public ? Json::array({"authorization_code", "implicit", "refresh_token"})
                         : Json::array({"authorization_code", "implicit", "refresh_token",
                                        "client_credentials"});
  }
  Json client = {
      {"client_id", client_id},
      {"tenant", std::string(tenant)},
      {"name", body.value("name", "")},
      {"description", body.value("description", "")},
      {"app_type", app_type},
      {"is_first_party", body.value("is_first_party", true)},
      {"oidc_conformant", body.value("oidc_conformant", true)},
      {"callbacks", body.value("callbacks", Json::array())},
      {"allowed_origins", body.value("allowed_origins", Json::array())},
      {"web_origins", body.value("web_origins", Json::array())},
      {"allowed_logout_urls", body.value("allowed_logout_urls", Json::array())},
      {"grant_types", grants},
      {"token_endpoint_auth_method",
       body.value("token_endpoint_auth_method", is_public ? "none" : "client_secret_post")},
      {"jwt_configuration",
       body.value("jwt_configuration", Json{{"alg", "RS256"}, {"lifetime_in_seconds", 36000}})},
      {"refresh_token", body.value("refresh_token", Json{{"rotation_type", "rotating"},
                                                         {"expiration_type", "expiring"},
                                                         {"token_lifetime", 2592000},
                                                         {"idle_token_lifetime", 1296000},
                                                         {"leeway", 0}})},
      {"client_metadata", body.value("client_metadata", Json::object())},
      {"global", false},
      {"is_system", false},
      {"created_at", iso8601(e.clock().now_ms())}};
  for (const char* k : {"logo_uri", "organization_usage", "organization_require_behavior",
                        "initiate_login_uri", "cross_origin_authentication", "sso"})
    if (body.contains(k)) client[k] = body[k];
  client["_secret"] = seal_secret(e, tenant, client_id, secret);
  if (secret_out) *secret_out = secret;
  return client;
}

namespace {

http::Response create_client(Ctx& ctx) {
  authorize(ctx, "create:clients");
  Json body = ctx.json_body();
  kCreate.check(body);
  check(body);
  // client_id / client_secret may be chosen only by the system (bootstrap, CLI import).
  if ((body.contains("client_id") || body.contains("client_secret")) && !ctx.caller.system)
    model::invalid_body(
        "Payload validation error: 'Additional properties not allowed: client_id'.");
  std::string secret;
  Json client = build_client(ctx.e, ctx.tenant, body, &secret);
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    try {
      tx.insert("client", client["client_id"].get<std::string>(), client);
    } catch (const store::Conflict&) {
      throw http::HttpError{409, "A client with that client_id already exists", "conflict"};
    }
  });
  Json out = client_view(client);
  out["client_secret"] = secret;
  return http::Response::json(201, out);
}

http::Response get_client(Ctx& ctx) {
  authorize(ctx, "read:clients");
  Json out;
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
    out = client_view(must_get(tx, "client", ctx.param("id")).data);
  });
  return http::Response::json(200, project_fields(ctx, std::move(out)));
}

http::Response list_clients(Ctx& ctx) {
  authorize(ctx, "read:clients");
  store::ListQuery filter;
  if (auto t = ctx.query.get("app_type")) {
    filter.field = "app_type";
    filter.value = *t;
  }
  return list_records(ctx, "client", "clients", client_view, filter);
}

http::Response update_client(Ctx& ctx) {
  authorize(ctx, "update:clients");
  Json body = ctx.json_body();
  kUpdate.check(body, true);
  check(body);
  Json out;
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    Json client = must_get(tx, "client", ctx.param("id")).data;
    for (auto it = body.begin(); it != body.end(); ++it) {
      if (it->is_object() && client[it.key()].is_object() && it.key() != "client_metadata")
        client[it.key()].merge_patch(*it);
      else
        client[it.key()] = *it;
    }
    tx.update("client", ctx.param("id"), client);
    out = client_view(client);
  });
  return http::Response::json(200, out);
}

http::Response delete_client(Ctx& ctx) {
  authorize(ctx, "delete:clients");
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    must_get(tx, "client", ctx.param("id"));
    store::ListQuery q;
    q.field = "client_id";
    q.value = ctx.param("id");
    q.limit = 100000;
    for (const auto& g : tx.list("client_grant", q)) tx.remove("client_grant", g.id);
    tx.remove("client", ctx.param("id"));
  });
  return http::Response::empty(204);
}

http::Response rotate_secret(Ctx& ctx) {
  authorize(ctx, "update:client_keys");
  const std::string secret = model::new_client_secret(ctx.e.rng());
  Json out;
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    Json client = must_get(tx, "client", ctx.param("id")).data;
    client["_secret"] = seal_secret(ctx.e, ctx.tenant, ctx.param("id"), secret);
    tx.update("client", ctx.param("id"), client);
    out = client_view(client);
  });
  out["client_secret"] = secret;
  return http::Response::json(200, out);
}

}  // namespace

void register_client_routes(Routes& r) {
  r.add("GET", "/api/v2/clients", list_clients);
  r.add("POST", "/api/v2/clients", create_client);
  r.add("GET", "/api/v2/clients/:id", get_client);
  r.add("PATCH", "/api/v2/clients/:id", update_client);
  r.add("DELETE", "/api/v2/clients/:id", delete_client);
  r.add("POST", "/api/v2/clients/:id/rotate-secret", rotate_secret);
}

}  // namespace ks::mgmt
