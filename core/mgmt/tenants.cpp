// /api/v2/tenants on the control plane (Keystead's extension of the Management API).
//
// Access (DESIGN.md "Tenants API scopes"): listing needs any valid control-plane management
// token and shows the tenants the caller may act on; an organization token may read, change
// and delete the tenant its organization names; creating needs create:tenants or, with the
// control plane's `self_service_tenants` setting on, any control-plane user token (the creator
// then becomes a "Tenant Admin" member of the new tenant's organization).
#include "core/tenancy/tenants.h"

#include <algorithm>

#include "core/mgmt/common.h"
#include "core/mgmt/scopes.h"

namespace ks::mgmt {
namespace {

void control_plane_only(Ctx& ctx) {
  if (ctx.tenant != ctx.e.cfg().control_plane_id)
    throw http::HttpError{404, "The tenants API lives on the control plane", "not_found"};
}

bool is_control_plane_token(const Ctx& ctx) {
  return ctx.caller.issuing_tenant == ctx.e.cfg().control_plane_id;
}

bool is_staff(const Ctx& ctx) {
  return ctx.caller.system || (is_control_plane_token(ctx) && ctx.caller.org_name.empty() &&
                               ctx.caller.scopes.count(std::string(kAdminOrganizations)));
}

// A route on one tenant: an org token for that tenant with the scope, or the usual rules.
void authorize_for(Ctx& ctx, std::string_view scope, std::string_view target) {
  authenticate_caller(ctx);
  if (!ctx.caller.system && is_control_plane_token(ctx) && ctx.caller.org_name == target) {
    if (!ctx.caller.scopes.count(std::string(scope)))
      forbidden("Insufficient scope, expected any of: " + std::string(scope));
    return;
  }
  authorize(ctx, scope);
}

// Tenants named by the organizations the caller (a control-plane user) belongs to.
std::vector<std::string> tenants_of_caller(Ctx& ctx) {
  std::vector<std::string> out;
  if (!is_control_plane_token(ctx)) return out;
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
    if (!ctx.caller.org_name.empty()) {
      if (auto org = tx.find("organization", ctx.caller.org_name))
        if (auto t = org->data["metadata"].find("tenant_id"); t != org->data["metadata"].end())
          out.push_back(t->get<std::string>());
      return;
    }
    for (const auto& l : tx.links_to("org_member", ctx.caller.sub, store::ListQuery::first(10000)))
      if (auto org = tx.get("organization", l.from))
        if (auto t = org->data["metadata"].find("tenant_id"); t != org->data["metadata"].end())
          out.push_back(t->get<std::string>());
  });
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

http::Response list_tenants(Ctx& ctx) {
  control_plane_only(ctx);
  authenticate_caller(ctx);
  if (is_staff(ctx))
    return list_records(ctx, tenancy::kTenantKind, "tenants", tenancy::TenantService::view);
  if (!is_control_plane_token(ctx))
    forbidden("Only control-plane tokens list tenants", "access_denied");
  Page p = page_params(ctx);
  const auto ids = tenants_of_caller(ctx);
  Json items = Json::array();
  const size_t start = p.checkpoint ? 0 : p.page * p.per_page;
  const size_t limit = p.checkpoint ? p.take : p.per_page;
  for (size_t i = start; i < ids.size() && items.size() < limit; ++i)
    if (auto t = ctx.e.tenants().get(ids[i])) items.push_back(tenancy::TenantService::view(*t));
  return list_response(p, "tenants", std::move(items), ids.size(), 0, false);
}

bool self_service_on(Ctx& ctx) {
  auto cp = ctx.e.tenants().get(ctx.e.cfg().control_plane_id);
  return cp && (*cp)["settings"].value("self_service_tenants", true);
}

http::Response create_tenant(Ctx& ctx) {
  control_plane_only(ctx);
  authenticate_caller(ctx);
  std::string creator;  // a self-serve creator, who becomes the tenant's first admin
  const bool granted =
      ctx.caller.system || (is_control_plane_token(ctx) && ctx.caller.org_name.empty() &&
                            ctx.caller.scopes.count("create:tenants"));
  if (!granted) {
    bool is_user = false;
    // Self-service is for the caller's own user token: an org token acts only on the tenant
    // its organization names, never on the control plane's own API.
    if (is_control_plane_token(ctx) && ctx.caller.org_name.empty() && !ctx.caller.sub.empty())
      ctx.e.store().read(
          ctx.tenant, [&](store::Tx& tx) { is_user = tx.get("user", ctx.caller.sub).has_value(); });
    if (!is_user || !self_service_on(ctx))
      forbidden("Insufficient scope, expected any of: create:tenants");
    creator = ctx.caller.sub;
  }
  return http::Response::json(201, ctx.e.tenants().create(ctx.json_body(), creator));
}

http::Response get_tenant(Ctx& ctx) {
  control_plane_only(ctx);
  authorize_for(ctx, "read:tenants", ctx.param("id"));
  auto t = ctx.e.tenants().get(ctx.param("id"));
  if (!t) not_found("tenant");
  return http::Response::json(200, tenancy::TenantService::view(*t));
}

http::Response update_tenant(Ctx& ctx) {
  control_plane_only(ctx);
  authorize_for(ctx, "update:tenants", ctx.param("id"));
  return http::Response::json(200, ctx.e.tenants().update(ctx.param("id"), ctx.json_body()));
}

http::Response delete_tenant(Ctx& ctx) {
  control_plane_only(ctx);
  authorize_for(ctx, "delete:tenants", ctx.param("id"));
  if (!ctx.e.tenants().remove(ctx.param("id"))) not_found("tenant");
  return http::Response::empty(204);
}

http::Response set_status(Ctx& ctx, std::string_view status) {
  control_plane_only(ctx);
  authorize(ctx, "update:tenants");
  return http::Response::json(200, ctx.e.tenants().set_status(ctx.param("id"), status));
}

// /api/v2/tenants/settings: the settings of the tenant the request is on (any tenant).
http::Response get_settings(Ctx& ctx) {
  authorize(ctx, "read:tenant_settings");
  auto t = ctx.e.tenants().get(ctx.tenant);
  if (!t) not_found("tenant");
  Json out = t->value("settings", Json::object());
  out["friendly_name"] = t->value("friendly_name", ctx.tenant);
  return http::Response::json(200, out);
}

http::Response patch_settings(Ctx& ctx) {
  authorize(ctx, "update:tenant_settings");
  Json body = ctx.json_body();
  if (!body.is_object()) throw http::HttpError{400, "Body must be a JSON object", "invalid_body"};
  Json patch = Json::object();
  if (body.contains("friendly_name")) {
    patch["friendly_name"] = body["friendly_name"];
    body.erase("friendly_name");
  }
  patch["settings"] = body;
  Json t = ctx.e.tenants().update(ctx.tenant, patch);
  Json out = t.value("settings", Json::object());
  out["friendly_name"] = t.value("friendly_name", ctx.tenant);
  return http::Response::json(200, out);
}

}  // namespace

void register_tenant_routes(Routes& r) {
  r.add("GET", "/api/v2/tenants/settings", get_settings);
  r.add("PATCH", "/api/v2/tenants/settings", patch_settings);
  r.add("GET", "/api/v2/tenants", list_tenants);
  r.add("POST", "/api/v2/tenants", create_tenant);
  r.add("GET", "/api/v2/tenants/:id", get_tenant);
  r.add("PATCH", "/api/v2/tenants/:id", update_tenant);
  r.add("DELETE", "/api/v2/tenants/:id", delete_tenant);
  r.add("POST", "/api/v2/tenants/:id/suspend", [](Ctx& c) { return set_status(c, "suspended"); });
  r.add("POST", "/api/v2/tenants/:id/resume", [](Ctx& c) { return set_status(c, "active"); });
}

}  // namespace ks::mgmt
