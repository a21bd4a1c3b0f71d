#include "core/oidc/keyring.h"

#include <algorithm>
#include <limits>
#include <stdexcept>

#include "core/engine_impl.h"

namespace ks::oidc {
namespace {

// A previous key stays published this long after rotation: longer than any token it signed
// can live (resource servers allow at most 30 days).
constexpr int64_t kPreviousKeyGrace = 2592000 + 300;

std::string cache_key(std::string_view tenant, std::string_view kid) {
  std::string k(tenant);
  k.push_back('\n');
  k.append(kid);
  return k;
}

}  // namespace

bool KeyRing::published(const Json& rec, int64_t now) {
  const auto status = rec.value("status", "");
  if (status == "current" || status == "next") return true;
  return status == "previous" && rec.value("retire_at", int64_t{0}) > now;
}

std::shared_ptr<const crypto::SigningKey> KeyRing::load(std::string_view tenant, const Json& rec) {
  const std::string kid = rec.at("kid").get<std::string>();
  const std::string key = cache_key(tenant, kid);
  if (auto hit = cache_.get(key)) return *hit;
  auto pem = e_.open(rec.at("_pem").get<std::string>(), key);
  if (!pem) throw std::runtime_error("signing key " + kid + " cannot be decrypted");
  std::shared_ptr<const crypto::SigningKey> parsed = crypto::SigningKey::from_pem(*pem);
  return cache_.put(key, std::move(parsed));
}

Json KeyRing::new_key_record(std::string_view tenant, std::string_view status) {
  std::string alg_name = "RS256";
  e_.store().read(e_.cfg().control_plane_id, [&](store::Tx& tx) {
    if (auto t = tx.get("tenant", tenant)) alg_name = t->data.value("signing_alg", "RS256");
  });
  auto alg = crypto::alg_from_name(alg_name).value_or(crypto::Alg::RS256);
  auto key = crypto::SigningKey::generate(alg, e_.rng());
  std::string kid = e_.rng().token(24);
  return {{"kid", kid},
          {"alg", std::string(crypto::alg_name(alg))},
          {"status", std::string(status)},
          {"created_at", e_.clock().now()},
          {"_pem", e_.seal(key->private_pem(), cache_key(tenant, kid))}};
}

ActiveKey KeyRing::signing_key(std::string_view tenant) {
  std::optional<Json> rec;
  e_.store().read(tenant, [&](store::Tx& tx) {
    if (auto r = tx.find(kSigningKeyKind, "current")) rec = std::move(r->data);
  });
  if (!rec) {
    // First use: a current key and the next one, so that a rotation promotes a key that
    // verifiers have already seen in JWKS. Generated outside any transaction (RSA takes a
    // while); the unique key "current" lets exactly one racing generator win.
    Json current = new_key_record(tenant, "current");
    current["current_since"] = e_.clock().now();
    Json next = new_key_record(tenant, "next");
    try {
      e_.store().write(tenant, [&](store::Tx& tx) {
        tx.insert(kSigningKeyKind, current["kid"].get<std::string>(), current, "current");
        tx.insert(kSigningKeyKind, next["kid"].get<std::string>(), next, "next");
      });
      rec = std::move(current);
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
                                                                    std::string_view kid,
                                                                    int64_t* valid_until) {
  // Cached material is immutable, but the key may have been revoked: always check its status.
  std::optional<Json> rec;
  e_.store().read(tenant, [&](store::Tx& tx) {
    if (auto r = tx.get(kSigningKeyKind, kid)) rec = std::move(r->data);
  });
  if (!rec || !published(*rec, e_.clock().now())) return nullptr;
  if (valid_until)
    *valid_until = rec->value("status", "") == "previous" ? rec->value("retire_at", int64_t{0})
                                                          : std::numeric_limits<int64_t>::max();
  return load(tenant, *rec);
}

std::vector<Json> KeyRing::records(std::string_view tenant) {
  std::vector<Json> recs;
  e_.store().read(tenant, [&](store::Tx& tx) {
    for (auto& r : tx.list(kSigningKeyKind, store::ListQuery::first(1000)))
      recs.push_back(std::move(r.data));
  });
  return recs;
}

Json KeyRing::jwks(std::string_view tenant, int64_t* valid_until) {
  signing_key(tenant);  // a tenant always publishes at least its current key
  const int64_t now = e_.clock().now();
  int64_t until = std::numeric_limits<int64_t>::max();
  Json keys = Json::array();
  for (const auto& rec : records(tenant)) {
    if (!published(rec, now)) continue;
    keys.push_back(load(tenant, rec)->public_jwk(rec.at("kid").get<std::string>()));
    if (rec.value("status", "") == "previous")
      until = std::min(until, rec.value("retire_at", until));
  }
  if (valid_until) *valid_until = until;
  return {{"keys", keys}};
}

Json KeyRing::describe(std::string_view tenant, const Json& rec) {
  const std::string status = rec.value("status", "");
  Json j = {{"kid", rec.value("kid", "")},
            {"alg", rec.value("alg", "")},
            {"current", status == "current"},
            {"next", status == "next"},
            {"previous", status == "previous"},
            {"revoked", status == "revoked"},
            {"published", published(rec, e_.clock().now())}};
  for (const char* k : {"current_since", "current_until", "revoked_at", "retire_at"})
    if (rec.contains(k)) j[k] = iso8601(rec[k].get<int64_t>() * 1000);
  if (status != "revoked") j["jwk"] = load(tenant, rec)->public_jwk(rec.value("kid", ""));
  return j;
}

Json KeyRing::list(std::string_view tenant) {
  signing_key(tenant);
  Json out = Json::array();
  for (const auto& rec : records(tenant)) out.push_back(describe(tenant, rec));
  return out;
}

std::optional<Json> KeyRing::get(std::string_view tenant, std::string_view kid) {
  signing_key(tenant);
  std::optional<Json> rec;
  e_.store().read(tenant, [&](store::Tx& tx) {
    if (auto r = tx.get(kSigningKeyKind, kid)) rec = std::move(r->data);
  });
  if (!rec) return std::nullopt;
  return describe(tenant, *rec);
}

Json KeyRing::rotate(std::string_view tenant) {
  signing_key(tenant);
  Json fresh = new_key_record(tenant, "next");
  const int64_t now = e_.clock().now();
  Json promoted;
  e_.store().write(tenant, [&](store::Tx& tx) {
    auto cur = tx.find(kSigningKeyKind, "current");
    auto next = tx.find(kSigningKeyKind, "next");
    if (cur) {
      Json d = cur->data;
      d["status"] = "previous";
      d["current_until"] = now;
      d["retire_at"] = now + kPreviousKeyGrace;
      tx.update(kSigningKeyKind, cur->id, d);
    }
    if (next) {
      Json d = next->data;
      d["status"] = "current";
      d["current_since"] = now;
      tx.update(kSigningKeyKind, next->id, d, "current");
      promoted = d;
    } else {
      // No published next key (should not happen): the fresh key becomes current directly.
      fresh["status"] = "current";
      fresh["current_since"] = now;
      tx.insert(kSigningKeyKind, fresh["kid"].get<std::string>(), fresh, "current");
      promoted = fresh;
      fresh = new_key_record(tenant, "next");
    }
    tx.insert(kSigningKeyKind, fresh["kid"].get<std::string>(), fresh, "next");
  });
  return describe(tenant, promoted);
}

std::optional<Json> KeyRing::revoke(std::string_view tenant, std::string_view kid,
                                    std::string* error) {
  std::optional<Json> out;
  const int64_t now = e_.clock().now();
  e_.store().write(tenant, [&](store::Tx& tx) {
    auto r = tx.get(kSigningKeyKind, kid);
    if (!r) return;
    const std::string status = r->data.value("status", "");
    if (status != "previous") {
      if (error)
        *error = "Only a previous key can be revoked; rotate first (this key is " + status + ")";
      out = Json();
      return;
    }
    Json d = r->data;
    d["status"] = "revoked";
    d["revoked_at"] = now;
    tx.update(kSigningKeyKind, r->id, d);
    out = d;
  });
  if (out && !out->is_null()) return describe(tenant, *out);
  return out;
}

void KeyRing::forget(std::string_view tenant) {
  std::string prefix(tenant);
  prefix.push_back('\n');
  cache_.erase_if([&](const std::string& k) { return k.starts_with(prefix); });
}

}  // namespace ks::oidc
