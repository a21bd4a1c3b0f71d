#include "core/engine_impl.h"
#include "core/oidc/oidc.h"

namespace ks {
namespace {

Json discovery_document(const std::string& iss) {
  return {
      {"issuer", iss},
      {"authorization_endpoint", iss + "authorize"},
      {"token_endpoint", iss + "oauth/token"},
      {"userinfo_endpoint", iss + "userinfo"},
      {"jwks_uri", iss + ".well-known/jwks.json"},
      {"revocation_endpoint", iss + "oauth/revoke"},
      {"introspection_endpoint", iss + "oauth/introspect"},
      {"end_session_endpoint", iss + "oidc/logout"},
      {"scopes_supported", {"openid", "profile", "email", "address", "phone", "offline_access"}},
      {"response_types_supported", {"code"}},
      {"response_modes_supported", {"query", "fragment", "form_post", "web_message"}},
      {"grant_types_supported",
       {"authorization_code", "refresh_token", "client_credentials", "password"}},
      {"subject_types_supported", {"public"}},
      {"id_token_signing_alg_values_supported", {"RS256", "ES256"}},
      {"token_endpoint_auth_methods_supported",
       {"client_secret_basic", "client_secret_post", "none"}},
      {"revocation_endpoint_auth_methods_supported",
       {"client_secret_basic", "client_secret_post", "none"}},
      {"introspection_endpoint_auth_methods_supported",
       {"client_secret_basic", "client_secret_post"}},
      {"code_challenge_methods_supported", {"S256"}},
      {"claims_supported",
       {"aud", "auth_time", "created_at", "email", "email_verified", "exp", "family_name",
        "given_name", "iat", "identities", "iss", "name", "nickname", "phone_number", "picture",
        "sub", "org_id", "org_name", "tenant_id"}},
      {"request_uri_parameter_supported", false},
      {"request_parameter_supported", false},
  };
}

http::Response public_json(std::string body) {
  http::Response r;
  r.status = 200;
  r.body = std::move(body);
  r.set_header("content-type", "application/json");
  r.set_header("cache-control", "public, max-age=300");
  r.set_header("access-control-allow-origin", "*");
  return r;
}

// The document depends on the issuer the tenant was reached by (custom domain, subdomain, path).
http::Response discovery(Ctx& ctx) {
  auto body = ctx.state->memo<std::string>("discovery\n" + ctx.issuer, [&] {
    return std::make_shared<const std::string>(discovery_document(ctx.issuer).dump());
  });
  return public_json(*body);
}

// Kept until the state changes (a rotation or revocation writes a key) or a previous key's
// retirement time passes.
struct CachedJwks {
  std::string body;
  int64_t valid_until;
};

http::Response jwks(Ctx& ctx) {
  const int64_t now = ctx.e.clock().now();
  auto make = [&] {
    int64_t until = 0;
    Json keys = ctx.e.keys().jwks(ctx.tenant, &until);
    return std::make_shared<const CachedJwks>(CachedJwks{keys.dump(), until});
  };
  return public_json(ctx.state->memo_until<CachedJwks>("jwks", now, make)->body);
}

}  // namespace

void register_token_routes(Routes& r);

void register_oidc_routes(Routes& r) {
  r.add("GET", "/.well-known/openid-configuration", discovery);
  r.add("GET", "/.well-known/jwks.json", jwks);
  register_token_routes(r);
  oidc::register_authorize_routes(r);
  oidc::register_page_routes(r);
  oidc::register_endpoint_routes(r);
  oidc::register_federated_routes(r);
  oidc::register_email_flow_routes(r);
}

}  // namespace ks
