// /api/v2/tenants on the control plane (Keystead's extension of the Management API).
#include "core/tenancy/tenants.h"

#include "core/mgmt/common.h"

namespace ks::mgmt {
namespace {

void control_plane_only(Ctx& ctx) {
  if (ctx.tenant != ctx.e.cfg().control_plane_id)
    throw http::HttpError{404, "The tenants API lives on the control plane", "not_found"};
}

http::Response list_tenants(Ctx& ctx) {
  control_plane_only(ctx);
  authorize(ctx, "read:tenants");
  return list_records(ctx, tenancy::kTenantKind, "tenants", tenancy::TenantService::view);
}

http::Response create_tenant(Ctx& ctx) {
  control_plane_only(ctx);
  authorize(ctx, "create:tenants");
  return http::Response::json(201, ctx.e.tenants().create(ctx.json_body()));
}

http::Response get_tenant(Ctx& ctx) {
  control_plane_only(ctx);
  authorize(ctx, "read:tenants");
  auto t = ctx.e.tenants().get(ctx.param("id"));
  if (!t) not_found("tenant");
  return http::Response::json(200, tenancy::TenantService::view(*t));
}

http::Response update_tenant(Ctx& ctx) {
  control_plane_only(ctx);
  authorize(ctx, "update:tenants");
  return http::Response::json(200, ctx.e.tenants().update(ctx.param("id"), ctx.json_body()));
}

http::Response delete_tenant(Ctx& ctx) {
  control_plane_only(ctx);
  authorize(ctx, "delete:tenants");
  if (!ctx.e.tenants().remove(ctx.param("id"))) not_found("tenant");
  return http::Response::empty(204);
}

}  // namespace

void register_tenant_routes(Routes& r) {
  r.add("GET", "/api/v2/tenants", list_tenants);
  r.add("POST", "/api/v2/tenants", create_tenant);
  r.add("GET", "/api/v2/tenants/:id", get_tenant);
  r.add("PATCH", "/api/v2/tenants/:id", update_tenant);
  r.add("DELETE", "/api/v2/tenants/:id", delete_tenant);
}

}  // namespace ks::mgmt
