#pragma once
// The one tenant resolver: every request (and every token issuer being verified) is mapped to
// one tenant by the strategies of KEYSTEAD_TENANT_RESOLUTION, tried in order.
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/config.h"
#include "core/http/http.h"

namespace ks::tenancy {

struct Resolution {
  enum class Kind { kResolved, kUnresolved, kInvalid };
  Kind kind = Kind::kUnresolved;
  std::string tenant;      // resolved tenant id
  std::string issuer;      // base URL the tenant was reached by, with trailing '/'
  std::string local_path;  // request path below the tenant's base (always starts with '/')
  std::string strategy;    // domain | subdomain | path | header | default
  std::string error;       // for kInvalid
};

class TenantResolver {
 public:
  // domain_lookup: exact custom domain (lower-case host without port) → tenant id.
  using DomainLookup = std::function<std::optional<std::string>(std::string_view host)>;
  // canonical_issuer: tenant id → its canonical issuer (used for header-resolved requests).
  using CanonicalIssuer = std::function<std::string(std::string_view tenant)>;

  TenantResolver(const Config& cfg, DomainLookup domains, CanonicalIssuer canonical);

  // Unresolved requests fall back to the control plane in dev mode (kResolved with strategy
  // "default"); in prod mode they stay kUnresolved.
  Resolution resolve(const http::Request& req) const;
  // Resolves a token issuer URL: the tenant whose base URL it is, or nullopt.
  std::optional<std::string> tenant_of_issuer(std::string_view issuer) const;

 private:
  Resolution resolve_parts(std::string_view scheme, std::string_view host_port,
                           std::string_view path, const http::Request* req) const;

  const Config& cfg_;
  DomainLookup domains_;
  CanonicalIssuer canonical_;
};

}  // namespace ks::tenancy
