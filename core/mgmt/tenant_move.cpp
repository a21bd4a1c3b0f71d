// POST /api/v2/tenants/{id}/move {"isolation": "shared" | "database"} on the control plane:
// moves a live tenant's data between the shared database and a database of its own, keeping
// every token, session and checkpoint valid (docs/operations.md, "Moving a tenant").
//
// Where a tenant's data lives is the platform's concern, like suspending it, so access is that
// of suspend/resume: update:tenants on a token allowed on the control plane itself (a tenant
// admin's organization token is not).
#include "core/mgmt/common.h"
#include "core/model/schema.h"
#include "core/tenancy/tenants.h"

namespace ks::mgmt {
namespace {

const model::Schema kMoveSchema = {
    {"isolation", model::Type::String, true, 16},
};

http::Response move_tenant(Ctx& ctx) {
  if (ctx.tenant != ctx.e.cfg().control_plane_id)
    throw http::HttpError{404, "The tenants API lives on the control plane", "not_found"};
  authorize(ctx, "update:tenants");
  const Json body = ctx.json_body();
  kMoveSchema.check(body);
  return http::Response::json(
      200, ctx.e.tenants().move(ctx.param("id"), body["isolation"].get<std::string>()));
}

}  // namespace

void register_tenant_move_routes(Routes& r) {
  r.add("POST", "/api/v2/tenants/:id/move", move_tenant);
}

}  // namespace ks::mgmt
