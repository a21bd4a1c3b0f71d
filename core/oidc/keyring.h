#pragma once
// Per-tenant signing keys. Keys are generated lazily (the first token or JWKS request of a
// tenant), so provisioning a tenant costs no key generation. Private keys are stored sealed
// under the master key; parsed keys are cached by (tenant, kid) — a kid's material never changes —
// in a bounded LRU, so memory stays flat with many tenants (a key not cached is parsed again).
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/crypto/crypto.h"
#include "core/json.h"
#include "core/lru.h"

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
  // Parsed keys kept: the current and next key of this many busy tenants (about 2 KiB each for
  // RSA-2048).
  static constexpr size_t kCachedKeys = 8192;

  explicit KeyRing(EngineImpl& e, size_t cached_keys = kCachedKeys) : e_(e), cache_(cached_keys) {}

  size_t cached_keys() const { return cache_.size(); }

  // The tenant's current signing key, generated on first use.
  ActiveKey signing_key(std::string_view tenant);
  // A published (current, next or previous) key by kid, or nullptr. *valid_until (when given):
  // the time (seconds) it stops being published unless the key is written, or INT64_MAX.
  std::shared_ptr<const crypto::SigningKey> verification_key(std::string_view tenant,
                                                             std::string_view kid,
                                                             int64_t* valid_until = nullptr);
  // {"keys":[...]} with every published key of the tenant; *valid_until (when given): the time
  // (seconds) at which a published key stops being published, or INT64_MAX.
  Json jwks(std::string_view tenant, int64_t* valid_until = nullptr);
  // Drops cached keys of a deleted tenant.
  void forget(std::string_view tenant);

  // Management: every key with its state; one key; rotation (next → current → previous, a new
  // next is generated); revocation of a previous key (nullopt: no such key; a null Json with
  // *error set: not revocable).
  Json list(std::string_view tenant);
  std::optional<Json> get(std::string_view tenant, std::string_view kid);
  Json rotate(std::string_view tenant);
  std::optional<Json> revoke(std::string_view tenant, std::string_view kid, std::string* error);

 private:
  std::shared_ptr<const crypto::SigningKey> load(std::string_view tenant, const Json& record);
  Json new_key_record(std::string_view tenant, std::string_view status);
  std::vector<Json> records(std::string_view tenant);
  Json describe(std::string_view tenant, const Json& record);
  static bool published(const Json& record, int64_t now);

  EngineImpl& e_;
  LruCache<std::shared_ptr<const crypto::SigningKey>> cache_;
};

inline constexpr std::string_view kSigningKeyKind = "signing_key";

}  // namespace ks::oidc
