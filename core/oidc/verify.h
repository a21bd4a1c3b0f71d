#pragma once
// Verification of JWTs issued by Keystead tenants: the one place that checks signature,
// issuer and expiry. Callers add their own audience and tenant rules.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/json.h"
#include "core/lru.h"

namespace ks {
class EngineImpl;
namespace tenancy {
struct TenantState;
}
}  // namespace ks

namespace ks::oidc {

struct VerifiedJwt {
  Json header;
  Json claims;
  std::string tenant;  // the issuing tenant (tenant_id claim, confirmed by iss and key)
  int64_t exp = 0;     // the "exp" claim (0 when absent)
};

struct VerifyOptions {
  bool check_expiry = true;
  // When set, the token must have been issued by this tenant.
  std::string_view tenant;
};

// nullptr with *error set ("Expired token", "Invalid token: …") when the token is not valid.
// The result may be shared with other callers (the cache below): treat it as read-only.
std::shared_ptr<const VerifiedJwt> verify_jwt(EngineImpl& e, std::string_view token,
                                              std::string* error, const VerifyOptions& opts = {});

bool audience_has(const Json& aud, std::string_view want);

// Tokens verified recently, so that a bearer token presented again (every Management API call
// of a client, userinfo) skips decoding, JSON parsing and the signature check. An entry is used
// only while the issuer's state is the very one it was verified under — a key rotation or
// revocation writes a key and so makes a new state — and before its key's retirement time;
// expiry and the caller's options are checked on every use. Bounded (LRU); thread-safe.
class VerifiedTokens {
 public:
  static constexpr size_t kCapacity = 1024;

  struct Entry {
    std::shared_ptr<const VerifiedJwt> jwt;
    std::weak_ptr<const tenancy::TenantState> state;  // the issuer's state when verified
    int64_t valid_until = 0;                          // the key's retirement time (seconds)
  };

  explicit VerifiedTokens(size_t capacity = kCapacity) : lru_(capacity) {}
  std::optional<Entry> get(std::string_view token) { return lru_.get(token); }
  void put(std::string_view token, Entry e) { lru_.put(token, std::move(e)); }
  size_t size() const { return lru_.size(); }
  // Lookups answered from the cache, for tests and metrics.
  uint64_t hits() const { return hits_.load(std::memory_order_relaxed); }
  void count_hit() { hits_.fetch_add(1, std::memory_order_relaxed); }

 private:
  LruCache<Entry> lru_;
  std::atomic<uint64_t> hits_{0};
};

}  // namespace ks::oidc
