#include "core/oidc/verify.h"

#include "core/crypto/crypto.h"
#include "core/engine_impl.h"

namespace ks::oidc {

bool audience_has(const Json& aud, std::string_view want) {
  if (aud.is_string()) return aud.get<std::string>() == want;
  if (aud.is_array())
    for (const auto& a : aud)
      if (a.is_string() && a.get<std::string>() == want) return true;
  return false;
}

std::shared_ptr<const VerifiedJwt> verify_jwt(EngineImpl& e, std::string_view token,
                                              std::string* error, const VerifyOptions& opts) {
  auto fail = [&](const char* why) -> std::shared_ptr<const VerifiedJwt> {
    if (error) *error = why;
    return nullptr;
  };
  const int64_t now = e.clock().now();
  // What holds whether the signature was checked now or before: the caller's tenant, expiry.
  auto accept = [&](std::shared_ptr<const VerifiedJwt> v) -> std::shared_ptr<const VerifiedJwt> {
    if (!opts.tenant.empty() && v->tenant != opts.tenant)
      return fail("Invalid token: issued by another tenant");
    if (opts.check_expiry) {
      const Json& c = v->claims;
      if (!c.contains("exp") || !c["exp"].is_number() || v->exp <= now)
        return fail("Expired token");
      if (c.contains("nbf") && c["nbf"].is_number() && c["nbf"].get<int64_t>() > now + 60)
        return fail("Token not yet valid");
    }
    return v;
  };

  VerifiedTokens& cache = e.verified_tokens();
  if (auto hit = cache.get(token)) {
    auto state = e.tenants().state(hit->jwt->tenant);
    if (state && state == hit->state.lock() && now < hit->valid_until) {
      cache.count_hit();
      return accept(hit->jwt);
    }
  }

  auto jws = crypto::jws_parse(token);
  if (!jws) return fail("Invalid token");
  const Json& h = jws->header;
  const Json& c = jws->payload;
  // The algorithm comes from the key, never from the token; "none" and HS* are refused here.
  auto alg = h.contains("alg") && h["alg"].is_string()
                 ? crypto::alg_from_name(h["alg"].get<std::string>())
                 : std::nullopt;
  if (!alg) return fail("Invalid token: unsupported algorithm");
  if (!h.contains("kid") || !h["kid"].is_string()) return fail("Invalid token: missing kid");
  if (!c.contains("tenant_id") || !c["tenant_id"].is_string() || !c.contains("iss") ||
      !c["iss"].is_string())
    return fail("Invalid token");
  const std::string issuing = c["tenant_id"].get<std::string>();
  if (!opts.tenant.empty() && issuing != opts.tenant)
    return fail("Invalid token: issued by another tenant");
  auto iss_tenant = e.resolver().tenant_of_issuer(c["iss"].get<std::string>());
  if (!iss_tenant || *iss_tenant != issuing) return fail("Invalid token: issuer mismatch");
  auto state = e.tenants().state(issuing);
  if (!state) return fail("Invalid token: unknown issuer");
  // Kept with the issuer's state (a rotation or revocation writes a key, making a new state)
  // until a previous key's retirement time.
  struct Published {
    std::shared_ptr<const crypto::SigningKey> key;
    int64_t valid_until;
  };
  const std::string kid = h["kid"].get<std::string>();
  auto lookup = [&] {
    Published p{nullptr, 0};
    p.key = e.keys().verification_key(issuing, kid, &p.valid_until);
    return p.key ? std::make_shared<const Published>(std::move(p)) : nullptr;
  };
  auto published = state->memo_until<Published>("verification_key\n" + kid, now, lookup);
  const auto* key = published ? published->key.get() : nullptr;
  if (!key || key->alg() != *alg || !key->verify(jws->signing_input, jws->signature))
    return fail("Invalid token: signature verification failed");
  const int64_t exp = c.contains("exp") && c["exp"].is_number() ? c["exp"].get<int64_t>() : 0;
  auto v = std::make_shared<const VerifiedJwt>(
      VerifiedJwt{std::move(jws->header), std::move(jws->payload), issuing, exp});
  // Only tokens still valid are worth keeping (an expired id_token_hint is checked once).
  if (exp > now) cache.put(token, {v, state, published->valid_until});
  return accept(std::move(v));
}

}  // namespace ks::oidc
