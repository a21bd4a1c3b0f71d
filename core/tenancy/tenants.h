#pragma once
// Tenant registry and lifecycle. Tenants are records of kind "tenant" in the control plane's
// scope; custom domains are records of kind "custom_domain" (id = host) pointing at a tenant.
#include <optional>
#include <string>
#include <string_view>

#include "core/json.h"
#include "core/store/store.h"
#include "core/tenancy/state.h"

namespace ks {
class EngineImpl;
}

namespace ks::tenancy {

inline constexpr std::string_view kTenantKind = "tenant";
inline constexpr std::string_view kCustomDomainKind = "custom_domain";

class TenantService {
 public:
  explicit TenantService(EngineImpl& e) : e_(e), states_(e) {}

  // The stored tenant record, read now (Management API reads and writes).
  std::optional<Json> get(std::string_view id);
  // The tenant's state as requests see it (cached; nullptr: no such tenant). Not inside a Tx.
  std::shared_ptr<const TenantState> state(std::string_view id) { return states_.get(id); }
  const TenantStateCache& states() const { return states_; }
  // Validates and provisions a tenant. Throws http::HttpError (400 invalid or reserved id,
  // 409 duplicate). Returns the public tenant representation. A self-serve creator (a
  // control-plane user id) becomes a "Tenant Admin" member of the tenant's organization in the
  // same transaction.
  Json create(const Json& body, std::string_view creator = {});
  Json update(std::string_view id, const Json& body);
  // Suspends ("suspended": every request 403, data kept) or resumes ("active") a child tenant.
  Json set_status(std::string_view id, std::string_view status);
  // Deletes a child tenant and all its data; idempotent (false if it did not exist).
  bool remove(std::string_view id);
  // Moves a live child tenant's data to isolation "shared" or "database" and records it
  // (400 bad value, 403 control plane, 404 unknown). Returns the public tenant representation.
  Json move(std::string_view id, std::string_view isolation);

  std::optional<std::string> tenant_of_domain(std::string_view host);
  std::string canonical_issuer(std::string_view id);

  // Creates the control plane on first start (idempotent).
  void ensure_control_plane();

  // Public view of a stored tenant record.
  static Json view(const Json& record);

 private:
  void provision_defaults(store::Tx& tx);
  void check_domains(store::Tx& cp, const Json& domains, std::string_view tenant);

  EngineImpl& e_;
  TenantStateCache states_;
};

}  // namespace ks::tenancy
