#pragma once
// Per-tenant signing keys. Keys are generated lazily (the first token or JWKS request of a
// tenant), so provisioning a tenant costs no key generation. Private keys are stored sealed
// under the master key; parsed keys are cached by (tenant, kid) — a kid's material never changes.
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/crypto/crypto.h"
#include "core/json.h"

namespace ks {
class EngineImpl;
}

namespace ks::oidc {

struct ActiveKey {
  std::string kid;
  std::shared_ptr<const crypto::SigningKey> key;
};

class KeyRing {
 public:
  explicit KeyRing(EngineImpl& e) : e_(e) {}

  // The tenant's current signing key, generated on first use.
  ActiveKey signing_key(std::string_view tenant);
  // A published (current, next or previous) key by kid, or nullptr.
  std::shared_ptr<const crypto::SigningKey> verification_key(std::string_view tenant,
                                                             std::string_view kid);
  // {"keys":[...]} with every published key of the tenant.
  Json jwks(std::string_view tenant);
  // Drops cached keys of a deleted tenant.
  void forget(std::string_view tenant);

 private:
  std::shared_ptr<const crypto::SigningKey> load(std::string_view tenant, const Json& record);

  EngineImpl& e_;
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const crypto::SigningKey>> cache_;
};

inline constexpr std::string_view kSigningKeyKind = "signing_key";

}  // namespace ks::oidc
