// /api/v2/branding (hosted page look) and /api/v2/user-blocks (brute-force blocks).
#include "core/mgmt/common.h"
#include "core/model/schema.h"
#include "core/oidc/flow.h"
#include "core/tenancy/fallback.h"

namespace ks::mgmt {
namespace {

using model::Type;

const model::Schema kBranding = {
    {"colors", Type::Object},
    {"logo_url", Type::String, false, 2048},
    {"favicon_url", Type::String, false, 2048},
    {"font", Type::Object},
};

http::Response get_branding(Ctx& ctx) {
  authorize(ctx, "read:branding");
  Json out = Json::object();
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
    if (auto b = tx.get("branding", "default")) out = std::move(b->data);
  });
  return http::Response::json(200, out);
}

http::Response patch_branding(Ctx& ctx) {
  authorize(ctx, "update:branding");
  Json body = ctx.json_body();
  kBranding.check(body, true);
  if (body.contains("colors"))
    for (auto it = body["colors"].begin(); it != body["colors"].end(); ++it)
      if (!it->is_string() && !it->is_null())
        model::invalid_body("Payload validation error: colors must be strings.");
  for (const char* k : {"logo_url", "favicon_url"})
    if (body.contains(k) && !body[k].get<std::string>().starts_with("https://") &&
        !body[k].get<std::string>().starts_with("http://"))
      model::invalid_body(std::string("Payload validation error: '") + k +
                          "' must be an http(s) URL.");
  Json out;
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    auto b = tx.get("branding", "default");
    Json d = b ? b->data : Json::object();
    d.merge_patch(body);
    if (b)
      tx.update("branding", "default", d);
    else
      tx.insert("branding", "default", d);
    out = d;
  });
  return http::Response::json(200, out);
}

// Blocks are records "login_failures" keyed by user and IP once the count reached the limit.
std::vector<store::Record> failures_of(store::Tx& tx, const std::string& user_id) {
  store::ListQuery q;
  q.field = "user_id";
  q.value = user_id;
  q.limit = 10000;
  return tx.list("login_failures", q);
}

int64_t max_attempts(Ctx& ctx) { return oidc::max_login_attempts(ctx.state->settings); }

std::string user_of_identifier(store::Tx& tx, const std::string& identifier) {
  store::ListQuery q;
  q.field = "email";
  q.value = identifier;
  q.limit = 1;
  auto r = tx.list("user", q);
  return r.empty() ? std::string() : r[0].id;
}

http::Response blocks_response(Ctx& ctx, const std::string& user_id,
                               const std::string& identifier) {
  const int64_t limit = max_attempts(ctx);
  Json blocked = Json::array();
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
    for (const auto& f : failures_of(tx, user_id))
      if (f.data.value("count", 0) >= limit)
        blocked.push_back({{"identifier", identifier}, {"ip", f.data.value("ip", "")}});
  });
  return http::Response::json(200, {{"blocked_for", blocked}});
}

http::Response get_blocks(Ctx& ctx) {
  authorize(ctx, "read:users");
  std::string email;
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
    email = must_get(tx, "user", ctx.param("id")).data.value("email", "");
  });
  return blocks_response(ctx, ctx.param("id"), email);
}

void clear_blocks(Ctx& ctx, const std::string& user_id) {
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    for (const auto& f : failures_of(tx, user_id)) tx.remove("login_failures", f.id);
  });
}

http::Response delete_blocks(Ctx& ctx) {
  authorize(ctx, "update:users");
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) { must_get(tx, "user", ctx.param("id")); });
  clear_blocks(ctx, ctx.param("id"));
  return http::Response::empty(204);
}

std::string identifier_param(Ctx& ctx) {
  auto id = ctx.query.get("identifier");
  if (!id || id->empty())
    throw http::HttpError{400, "Query validation error: 'identifier' is required",
                          "invalid_query_string"};
  return *id;
}

http::Response get_blocks_by_identifier(Ctx& ctx) {
  authorize(ctx, "read:users");
  const std::string identifier = identifier_param(ctx);
  std::string user_id;
  ctx.e.store().read(ctx.tenant,
                     [&](store::Tx& tx) { user_id = user_of_identifier(tx, identifier); });
  if (user_id.empty()) return http::Response::json(200, {{"blocked_for", Json::array()}});
  return blocks_response(ctx, user_id, identifier);
}

http::Response delete_blocks_by_identifier(Ctx& ctx) {
  authorize(ctx, "update:users");
  const std::string identifier = identifier_param(ctx);
  std::string user_id;
  ctx.e.store().read(ctx.tenant,
                     [&](store::Tx& tx) { user_id = user_of_identifier(tx, identifier); });
  if (!user_id.empty()) clear_blocks(ctx, user_id);
  return http::Response::empty(204);
}

}  // namespace

void register_branding_routes(Routes& r) {
  r.add("GET", "/api/v2/branding", get_branding);
  r.add("PATCH", "/api/v2/branding", patch_branding);
  r.add("GET", "/api/v2/user-blocks", get_blocks_by_identifier);
  r.add("DELETE", "/api/v2/user-blocks", delete_blocks_by_identifier);
  r.add("GET", "/api/v2/user-blocks/:id", get_blocks);
  r.add("DELETE", "/api/v2/user-blocks/:id", delete_blocks);
}

}  // namespace ks::mgmt
