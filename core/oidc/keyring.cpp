#include "core/oidc/keyring.h"

#include <stdexcept>

#include "core/engine_impl.h"

namespace ks::oidc {
namespace {

std::string cache_key(std::string_view tenant, std::string_view kid) {
  std::string k(tenant);
  k.push_back('\n');
  k.append(kid);
  return k;
}

bool published(const Json& rec) {
  const auto status = rec.value("status", "");
  return status == "current" || status == "next" || status == "previous";
}

}  // namespace

std::shared_ptr<const crypto::SigningKey> KeyRing::load(std::string_view tenant, const Json& rec) {
  const std::string kid = rec.at("kid").get<std::string>();
  const std::string key = cache_key(tenant, kid);
  {
    std::lock_guard lock(mu_);
    if (auto it = cache_.find(key); it != cache_.end()) return it->second;
  }
  auto pem = e_.open(rec.at("_pem").get<std::string>(), key);
  if (!pem) throw std::runtime_error("signing key " + kid + " cannot be decrypted");
  std::shared_ptr<const crypto::SigningKey> parsed = crypto::SigningKey::from_pem(*pem);
  std::lock_guard lock(mu_);
  return cache_.emplace(key, std::move(parsed)).first->second;
}

ActiveKey KeyRing::signing_key(std::string_view tenant) {
  std::optional<Json> rec;
  e_.store().read(tenant, [&](store::Tx& tx) {
    if (auto r = tx.find(kSigningKeyKind, "current")) rec = std::move(r->data);
  });
  if (!rec) {
    // Generate outside any transaction (RSA generation takes a while), then race to insert:
    // the unique key "current" lets exactly one generated key win.
    std::string alg_name = "RS256";
    e_.store().read(e_.cfg().control_plane_id, [&](store::Tx& tx) {
      if (auto t = tx.get("tenant", tenant)) alg_name = t->data.value("signing_alg", "RS256");
    });
    auto alg = crypto::alg_from_name(alg_name).value_or(crypto::Alg::RS256);
    auto key = crypto::SigningKey::generate(alg, e_.rng());
    std::string kid = e_.rng().token(24);
    Json data = {{"kid", kid},
                 {"alg", std::string(crypto::alg_name(alg))},
                 {"status", "current"},
                 {"created_at", iso8601(e_.clock().now_ms())},
                 {"_pem", e_.seal(key->private_pem(), cache_key(tenant, kid))}};
    try {
      e_.store().write(tenant,
                       [&](store::Tx& tx) { tx.insert(kSigningKeyKind, kid, data, "current"); });
      rec = std::move(data);
    } catch (const store::Conflict&) {
      e_.store().read(tenant, [&](store::Tx& tx) {
        if (auto r = tx.find(kSigningKeyKind, "current")) rec = std::move(r->data);
      });
      if (!rec) throw std::runtime_error("signing key race lost and no current key found");
    }
  }
  return {rec->at("kid").get<std::string>(), load(tenant, *rec)};
}

std::shared_ptr<const crypto::SigningKey> KeyRing::verification_key(std::string_view tenant,
                                                                    std::string_view kid) {
  // Cached material is immutable, but the key may have been revoked: always check its status.
  std::optional<Json> rec;
  e_.store().read(tenant, [&](store::Tx& tx) {
    if (auto r = tx.get(kSigningKeyKind, kid)) rec = std::move(r->data);
  });
  if (!rec || !published(*rec)) return nullptr;
  return load(tenant, *rec);
}

Json KeyRing::jwks(std::string_view tenant) {
  signing_key(tenant);  // a tenant always publishes at least its current key
  std::vector<Json> recs;
  e_.store().read(tenant, [&](store::Tx& tx) {
    store::ListQuery q;
    q.limit = 100;
    for (auto& r : tx.list(kSigningKeyKind, q))
      if (published(r.data)) recs.push_back(std::move(r.data));
  });
  Json keys = Json::array();
  for (const auto& rec : recs)
    keys.push_back(load(tenant, rec)->public_jwk(rec.at("kid").get<std::string>()));
  return {{"keys", keys}};
}

void KeyRing::forget(std::string_view tenant) {
  std::lock_guard lock(mu_);
  std::string prefix(tenant);
  prefix.push_back('\n');
  for (auto it = cache_.begin(); it != cache_.end();) {
    if (it->first.starts_with(prefix))
      it = cache_.erase(it);
    else
      ++it;
  }
}

}  // namespace ks::oidc
