// /api/v2/resource-servers (APIs and their scopes). The tenant's own management API and the
// copies synced from the control plane are system resources: visible, not modifiable. Writes on
// the control plane fan out to every child tenant in the same transaction (core/tenancy/sync.h).
#include "core/mgmt/common.h"
#include "core/model/ids.h"
#include "core/model/schema.h"
#include "core/tenancy/sync.h"

namespace ks::mgmt {
namespace {

using model::Type;

#define KS_RS_FIELDS                                                               \
  {"name", Type::String, false, 200}, {"scopes", Type::Array, false, 1000},        \
      {"signing_alg", Type::String}, {"signing_secret", Type::String, false, 256}, \
      {"allow_offline_access", Type::Boolean}, {"token_lifetime", Type::Integer},  \
      {"token_lifetime_for_web", Type::Integer},                                   \
      {"skip_consent_for_verifiable_first_party_clients", Type::Boolean},          \
      {"enforce_policies", Type::Boolean}, {"token_dialect", Type::String}, {      \
    "metadata", Type::Object                                                       \
  }

const model::Schema kCreate = {{"identifier", Type::String, true, 600}, KS_RS_FIELDS};
const model::Schema kUpdate = {KS_RS_FIELDS};
#undef KS_RS_FIELDS

void check(const Json& body) {
  if (body.contains("scopes")) {
    for (const auto& s : body["scopes"]) {
      if (!s.is_object() || !s.contains("value") || !s["value"].is_string() ||
          s["value"].get<std::string>().empty() ||
          (s.contains("description") && !s["description"].is_string()))
        model::invalid_body(
            "Payload validation error: each scope needs a string 'value' and an "
            "optional string 'description'.");
    }
  }
  if (body.contains("token_dialect")) {
    auto d = body["token_dialect"].get<std::string>();
    if (d != "access_token" && d != "access_token_authz" && d != "rfc9068_profile" &&
        d != "rfc9068_profile_authz")
      model::invalid_body("Payload validation error: 'Invalid value " + d +
                          "' on property token_dialect.");
  }
  for (const char* k : {"token_lifetime", "token_lifetime_for_web"})
    if (body.contains(k) && (body[k].get<int64_t>() < 1 || body[k].get<int64_t>() > 2592000))
      model::invalid_body(std::string("Payload validation error: '") + k +
                          "' must be between 1 and 2592000.");
}

void check_scopes_unique(const Json& scopes) {
  std::set<std::string> seen;
  for (const auto& s : scopes)
    if (!seen.insert(s["value"].get<std::string>()).second)
      model::invalid_body("Duplicate scope " + s["value"].get<std::string>());
}

// Every token of a tenant is signed with the tenant's key, so an API's signing_alg is the
// tenant's `signing_alg` (RS256 or ES256): shown as such, and any other value refused.
std::string tenant_alg(const Ctx& ctx) { return ctx.state->record.value("signing_alg", "RS256"); }

void check_signing_alg(const Ctx& ctx, const Json& body) {
  if (!body.contains("signing_alg")) return;
  const std::string want = tenant_alg(ctx), got = body["signing_alg"].get<std::string>();
  if (got != want)
    model::invalid_body("Payload validation error: 'Invalid value " + got +
                        "' on property signing_alg: tokens of this tenant are signed with " + want +
                        " (the tenant's signing_alg).");
}

Json rs_view(const Ctx& ctx, const Json& d) {
  Json v = public_view(d);
  v["signing_alg"] = tenant_alg(ctx);
  return v;
}

// {id} may be the id or the identifier (Auth0 accepts both).
store::Record find_rs(store::Tx& tx, const std::string& id_or_identifier) {
  if (auto r = tx.get("resource_server", id_or_identifier)) return std::move(*r);
  if (auto r = tx.find("resource_server", id_or_identifier)) return std::move(*r);
  not_found("resource_server");
}

void protect_system(const Json& rs) {
  if (rs.value("is_system", false)) tenancy::forbid_system_change("resource server");
}

// On the control plane, copies the change to every child tenant (inside the write's tx).
void sync(Ctx& ctx, store::Tx& tx, const std::string& id, const std::string& identifier) {
  if (ctx.tenant == ctx.e.cfg().control_plane_id)
    ctx.e.sync().resource_server_changed(tx, id, identifier);
}

http::Response create_rs(Ctx& ctx) {
  authorize(ctx, "create:resource_servers");
  Json body = ctx.json_body();
  if (body.is_object() && body.contains("is_system"))
    model::invalid_body("Payload validation error: 'is_system' cannot be set.");
  kCreate.check(body);
  check(body);
  check_signing_alg(ctx, body);
  const std::string identifier = body["identifier"].get<std::string>();
  if (identifier.empty())
    model::invalid_body("Payload validation error: 'identifier' must not be empty.");
  const std::string id = model::new_prefixed_id("api", ctx.e.rng());
  Json scopes = body.value("scopes", Json::array());
  check_scopes_unique(scopes);
  const std::string now = now_iso(ctx);
  Json rs = {{"id", id},
             {"name", body.value("name", identifier)},
             {"identifier", identifier},
             {"scopes", scopes},
             {"signing_alg", tenant_alg(ctx)},
             {"allow_offline_access", body.value("allow_offline_access", false)},
             {"token_lifetime", body.value("token_lifetime", ctx.e.cfg().access_token_lifetime)},
             {"token_lifetime_for_web", body.value("token_lifetime_for_web", 7200)},
             {"skip_consent_for_verifiable_first_party_clients",
              body.value("skip_consent_for_verifiable_first_party_clients", true)},
             {"enforce_policies", body.value("enforce_policies", false)},
             {"token_dialect", body.value("token_dialect", "access_token")},
             {"metadata", body.value("metadata", Json::object())},
             {"is_system", false},
             {"created_at", now},
             {"updated_at", now}};
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    try {
      tx.insert("resource_server", id, rs, identifier);
    } catch (const store::Conflict&) {
      throw http::HttpError{409, "A resource server with the same identifier already exists",
                            "conflict"};
    }
    sync(ctx, tx, id, identifier);
  });
  return http::Response::json(201, rs_view(ctx, rs));
}

http::Response list_rs(Ctx& ctx) {
  authorize(ctx, "read:resource_servers");
  // identifiers=a&identifiers=b: those APIs only (the ones that exist, in the order asked).
  std::vector<std::string> wanted;
  for (const auto& [k, v] : ctx.query.items())
    if (k == "identifiers" || k == "identifiers[]") wanted.push_back(v);
  auto view = [&](const Json& d) { return rs_view(ctx, d); };
  if (wanted.empty()) return list_records(ctx, "resource_server", "resource_servers", view);
  Page p = page_params(ctx);
  if (p.checkpoint)
    throw http::HttpError{400,
                          "Query validation error: 'identifiers' cannot be paged with from/take",
                          "invalid_query_string"};
  Json found = Json::array();
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
    for (const auto& id : wanted)
      if (auto r = tx.find("resource_server", id))
        found.push_back(project_fields(ctx, rs_view(ctx, r->data)));
  });
  const size_t total = found.size(), start = std::min(total, p.page * p.per_page);
  Json items = Json::array();
  for (size_t i = start; i < std::min(total, start + p.per_page); ++i)
    items.push_back(std::move(found[i]));
  return list_response(p, "resource_servers", std::move(items), total, 0, false);
}

http::Response get_rs(Ctx& ctx) {
  authorize(ctx, "read:resource_servers");
  Json out;
  ctx.e.store().read(ctx.tenant,
                     [&](store::Tx& tx) { out = rs_view(ctx, find_rs(tx, ctx.param("id")).data); });
  return http::Response::json(200, out);
}

http::Response update_rs(Ctx& ctx) {
  authorize(ctx, "update:resource_servers");
  Json body = ctx.json_body();
  if (body.is_object() && body.contains("identifier"))
    model::invalid_body("Payload validation error: 'identifier' cannot be changed.");
  if (body.is_object() && body.contains("is_system"))
    model::invalid_body("Payload validation error: 'is_system' cannot be set.");
  kUpdate.check(body, true);
  check(body);
  check_signing_alg(ctx, body);
  if (body.contains("scopes")) check_scopes_unique(body["scopes"]);
  Json out;
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    auto rec = find_rs(tx, ctx.param("id"));
    protect_system(rec.data);
    Json rs = rec.data;
    for (auto it = body.begin(); it != body.end(); ++it) rs[it.key()] = *it;
    rs["updated_at"] = now_iso(ctx);
    tx.update("resource_server", rec.id, rs, rs["identifier"].get<std::string>());
    sync(ctx, tx, rec.id, rs["identifier"].get<std::string>());
    out = rs_view(ctx, rs);
  });
  return http::Response::json(200, out);
}

http::Response delete_rs(Ctx& ctx) {
  authorize(ctx, "delete:resource_servers");
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    auto rec = find_rs(tx, ctx.param("id"));
    protect_system(rec.data);
    const std::string identifier = rec.data["identifier"].get<std::string>();
    store::ListQuery q;
    q.field = "audience";
    q.value = identifier;
    q.limit = 100000;
    for (const auto& g : tx.list("client_grant", q)) tx.remove("client_grant", g.id);
    tx.remove("resource_server", rec.id);
    sync(ctx, tx, rec.id, identifier);
  });
  return http::Response::empty(204);
}

}  // namespace

void register_resource_server_routes(Routes& r) {
  r.add("GET", "/api/v2/resource-servers", list_rs);
  r.add("POST", "/api/v2/resource-servers", create_rs);
  r.add("GET", "/api/v2/resource-servers/:id", get_rs);
  r.add("PATCH", "/api/v2/resource-servers/:id", update_rs);
  r.add("DELETE", "/api/v2/resource-servers/:id", delete_rs);
}

}  // namespace ks::mgmt
