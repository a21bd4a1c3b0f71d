// GET /api/v2/tenants/{id}/export and POST /api/v2/tenants/import on the control plane: a child
// tenant as one JSON document and back (core/tenancy/export.h; docs/operations.md, "Export and
// import").
//
// An export holds every password hash and sealed key of the tenant, and an import writes a whole
// tenant, so both are for platform staff (or the system: the CLI) only: a token of the control
// plane itself, without an organization, holding admin:organizations and the route's scope. A
// tenant admin's organization token is refused even for its own tenant.
#include "core/mgmt/common.h"
#include "core/mgmt/scopes.h"
#include "core/tenancy/export.h"

namespace ks::mgmt {
namespace {

void authorize_staff(Ctx& ctx, std::string_view scope) {
  if (ctx.tenant != ctx.e.cfg().control_plane_id)
    throw http::HttpError{404, "The tenants API lives on the control plane", "not_found"};
  authenticate_caller(ctx);
  if (ctx.caller.system) return;
  const bool staff = ctx.caller.issuing_tenant == ctx.e.cfg().control_plane_id &&
                     ctx.caller.org_name.empty() &&
                     ctx.caller.scopes.count(std::string(kAdminOrganizations));
  if (!staff) forbidden("Only platform staff can export or import tenants", "access_denied");
  if (!ctx.caller.scopes.count(std::string(scope)))
    forbidden("Insufficient scope, expected any of: " + std::string(scope));
}

http::Response export_tenant(Ctx& ctx) {
  authorize_staff(ctx, "read:tenants");
  return http::Response::json(200, tenancy::export_tenant(ctx.e, ctx.param("id")));
}

// Query: status=active|suspended and isolation=shared|database override the exported values.
http::Response import_tenant(Ctx& ctx) {
  authorize_staff(ctx, "create:tenants");
  tenancy::ImportOptions options;
  if (auto s = ctx.query.get("status")) {
    if (*s != "active" && *s != "suspended")
      throw http::HttpError{400, "status must be \"active\" or \"suspended\"",
                            "invalid_query_string"};
    options.status = std::string(*s);
  }
  if (auto i = ctx.query.get("isolation")) {
    options.isolation = store::parse_isolation(*i);
    if (!options.isolation)
      throw http::HttpError{400, "isolation must be \"shared\" or \"database\"",
                            "invalid_query_string"};
  }
  return http::Response::json(201, tenancy::import_tenant(ctx.e, ctx.json_body(), options));
}

}  // namespace

void register_tenant_export_routes(Routes& r) {
  r.add("GET", "/api/v2/tenants/:id/export", export_tenant);
  r.add("POST", "/api/v2/tenants/import", import_tenant);
}

}  // namespace ks::mgmt
