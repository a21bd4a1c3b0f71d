// /api/v2/client-grants: which APIs (audiences) a client may get tokens for, with which scopes.
#include "core/mgmt/common.h"
#include "core/model/ids.h"
#include "core/model/schema.h"

namespace ks::mgmt {
namespace {

using model::Type;

const model::Schema kCreate = {
    {"client_id", Type::String, true, 64},     {"audience", Type::String, true, 600},
    {"scope", Type::StringArray, true, 1000},  {"organization_usage", Type::String},
    {"allow_any_organization", Type::Boolean},
};
const model::Schema kUpdate = {
    {"scope", Type::StringArray, false, 1000},
    {"organization_usage", Type::String},
    {"allow_any_organization", Type::Boolean},
};

std::string grant_key(const std::string& client_id, const std::string& audience) {
  return client_id + "\n" + audience;
}

void check_scopes(store::Tx& tx, const std::string& audience, const Json& scopes) {
  auto rs = tx.find("resource_server", audience);
  if (!rs) not_found("resource_server");
  for (const auto& s : scopes) {
    bool defined = false;
    for (const auto& d : rs->data.value("scopes", Json::array()))
      defined = defined || d.value("value", "") == s.get<std::string>();
    if (!defined)
      model::invalid_body("Scope " + s.get<std::string>() + " is not defined on " + audience);
  }
}

http::Response create_grant(Ctx& ctx) {
  authorize(ctx, "create:client_grants");
  Json body = ctx.json_body();
  kCreate.check(body);
  const std::string client_id = body["client_id"].get<std::string>();
  const std::string audience = body["audience"].get<std::string>();
  const std::string id = model::new_prefixed_id("cgr", ctx.e.rng());
  Json grant = {
      {"id", id}, {"client_id", client_id}, {"audience", audience}, {"scope", body["scope"]}};
  for (const char* k : {"organization_usage", "allow_any_organization"})
    if (body.contains(k)) grant[k] = body[k];
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    if (!tx.get("client", client_id)) not_found("client");
    check_scopes(tx, audience, body["scope"]);
    try {
      tx.insert("client_grant", id, grant, grant_key(client_id, audience));
    } catch (const store::Conflict&) {
      throw http::HttpError{409, "A client grant for this client and audience already exists",
                            "client_grant_conflict"};
    }
  });
  return http::Response::json(201, grant);
}

http::Response list_grants(Ctx& ctx) {
  authorize(ctx, "read:client_grants");
  store::ListQuery filter;
  for (const char* f : {"client_id", "audience"}) {
    if (auto v = ctx.query.get(f)) {
      if (!filter.field.empty()) {
        // Both filters: the unique key answers directly.
        auto a = ctx.query.get("audience"), c = ctx.query.get("client_id");
        Json items = Json::array();
        ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
          if (auto g = tx.find("client_grant", grant_key(*c, *a))) items.push_back(g->data);
        });
        Page p = page_params(ctx);
        return list_response(p, "client_grants", items, items.size(), 0, false);
      }
      filter.field = f;
      filter.value = *v;
    }
  }
  return list_records(ctx, "client_grant", "client_grants", public_view, filter);
}

http::Response get_grant(Ctx& ctx) {
  authorize(ctx, "read:client_grants");
  Json out;
  ctx.e.store().read(
      ctx.tenant, [&](store::Tx& tx) { out = must_get(tx, "client_grant", ctx.param("id")).data; });
  return http::Response::json(200, out);
}

http::Response update_grant(Ctx& ctx) {
  authorize(ctx, "update:client_grants");
  Json body = ctx.json_body();
  kUpdate.check(body, true);
  Json out;
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    auto rec = must_get(tx, "client_grant", ctx.param("id"));
    Json grant = rec.data;
    if (body.contains("scope"))
      check_scopes(tx, grant["audience"].get<std::string>(), body["scope"]);
    for (auto it = body.begin(); it != body.end(); ++it) grant[it.key()] = *it;
    tx.update(
        "client_grant", rec.id, grant,
        grant_key(grant["client_id"].get<std::string>(), grant["audience"].get<std::string>()));
    out = grant;
  });
  return http::Response::json(200, out);
}

http::Response delete_grant(Ctx& ctx) {
  authorize(ctx, "delete:client_grants");
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    must_get(tx, "client_grant", ctx.param("id"));
    tx.remove("client_grant", ctx.param("id"));
  });
  return http::Response::empty(204);
}

}  // namespace

void register_client_grant_routes(Routes& r) {
  r.add("GET", "/api/v2/client-grants", list_grants);
  r.add("POST", "/api/v2/client-grants", create_grant);
  r.add("GET", "/api/v2/client-grants/:id", get_grant);
  r.add("PATCH", "/api/v2/client-grants/:id", update_grant);
  r.add("DELETE", "/api/v2/client-grants/:id", delete_grant);
}

}  // namespace ks::mgmt
