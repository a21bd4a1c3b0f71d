#pragma once
// Verification of JWTs issued by Keystead tenants: the one place that checks signature,
// issuer and expiry. Callers add their own audience and tenant rules.
#include <optional>
#include <string>
#include <string_view>

#include "core/json.h"

namespace ks {
class EngineImpl;
}

namespace ks::oidc {

struct VerifiedJwt {
  Json header;
  Json claims;
  std::string tenant;  // the issuing tenant (tenant_id claim, confirmed by iss and key)
};

struct VerifyOptions {
  bool check_expiry = true;
  // When set, the token must have been issued by this tenant.
  std::string_view tenant;
};

// nullopt with *error set ("Expired token", "Invalid token: …") when the token is not valid.
std::optional<VerifiedJwt> verify_jwt(EngineImpl& e, std::string_view token, std::string* error,
                                      const VerifyOptions& opts = {});

bool audience_has(const Json& aud, std::string_view want);

}  // namespace ks::oidc
