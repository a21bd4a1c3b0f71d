// /api/v2/keys/signing: list, get, rotate, revoke.
#include "core/mgmt/common.h"

namespace ks::mgmt {
namespace {

http::Response list_keys(Ctx& ctx) {
  authorize(ctx, "read:signing_keys");
  return http::Response::json(200, ctx.e.keys().list(ctx.tenant));
}

http::Response get_key(Ctx& ctx) {
  authorize(ctx, "read:signing_keys");
  auto k = ctx.e.keys().get(ctx.tenant, ctx.param("kid"));
  if (!k) throw http::HttpError{404, "Signing key not found", "inexistent_signing_key"};
  return http::Response::json(200, *k);
}

http::Response rotate_key(Ctx& ctx) {
  authorize(ctx, "create:signing_keys");
  return http::Response::json(201, ctx.e.keys().rotate(ctx.tenant));
}

http::Response revoke_key(Ctx& ctx) {
  authorize(ctx, "update:signing_keys");
  std::string error;
  auto k = ctx.e.keys().revoke(ctx.tenant, ctx.param("kid"), &error);
  if (!k) throw http::HttpError{404, "Signing key not found", "inexistent_signing_key"};
  if (k->is_null()) throw http::HttpError{400, error, "invalid_operation"};
  return http::Response::json(200, *k);
}

}  // namespace

void register_key_routes(Routes& r) {
  r.add("GET", "/api/v2/keys/signing", list_keys);
  r.add("POST", "/api/v2/keys/signing/rotate", rotate_key);
  r.add("GET", "/api/v2/keys/signing/:kid", get_key);
  r.add("PUT", "/api/v2/keys/signing/:kid/revoke", revoke_key);
}

}  // namespace ks::mgmt
