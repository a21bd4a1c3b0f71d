// KeyRing: lazily generated per-tenant keys, parsed keys cached in a bounded LRU.
#include "core/oidc/keyring.h"

#include <gtest/gtest.h>

#include <set>

#include "core/engine_impl.h"
#include "tests/unit/support/engine_fixture.h"

namespace {

using ks::test::EngineTest;

class KeyRingTest : public EngineTest {
 protected:
  void make_tenant(const std::string& id) {
    auto r = call("POST", "/api/v2/tenants", {{"id", id}}, admin());
    ASSERT_EQ(r.status, 201) << r.body;
  }
};

TEST_F(KeyRingTest, ParsedKeysStayWithinTheBoundAndEvictedOnesComeBack) {
  for (const char* t : {"k1", "k2", "k3"}) make_tenant(t);
  ks::oidc::KeyRing ring(impl(), 2);
  std::map<std::string, std::string> kid_of;
  for (const char* t : {"k1", "k2", "k3"}) {
    auto k = ring.signing_key(t);
    ASSERT_TRUE(k.key);
    kid_of[t] = k.kid;
    EXPECT_LE(ring.cached_keys(), 2u);
  }
  // k1's key was evicted: it is read and parsed again, the same key (same kid, verifies).
  auto again = ring.signing_key("k1");
  EXPECT_EQ(again.kid, kid_of["k1"]);
  auto verify = ring.verification_key("k1", kid_of["k1"]);
  ASSERT_TRUE(verify);
  EXPECT_LE(ring.cached_keys(), 2u);
  // Keys of different tenants differ.
  EXPECT_NE(kid_of["k1"], kid_of["k2"]);
  // forget() drops a tenant's keys only.
  ring.forget("k1");
  EXPECT_EQ(ring.signing_key("k1").kid, kid_of["k1"]);
}

// After a rotation the previous key stays published (JWKS) and accepted (tokens it signed) for
// its grace period, then neither — also where the JWKS and verification keys are kept with the
// tenant's cached state, which no write invalidates when only time passes.
TEST_F(KeyRingTest, APreviousKeyRetiresWithTimeThroughTheCaches) {
  const std::string old_token = admin();
  const std::string old_kid = ks::crypto::jws_parse(old_token)->header["kid"];
  auto jwks_kids = [&] {
    std::set<std::string> kids;
    const ks::Json jwks = body(call("GET", "/.well-known/jwks.json"));
    for (const auto& k : jwks["keys"]) kids.insert(k["kid"].get<std::string>());
    return kids;
  };

  EXPECT_EQ(call("GET", "/api/v2/clients", nullptr, old_token).status, 200);
  ASSERT_TRUE(jwks_kids().count(old_kid));
  ASSERT_EQ(call("POST", "/api/v2/keys/signing/rotate", nullptr, old_token).status, 201);
  // A token with fresh claims signed by the previous key (its material is still at hand).
  auto old_key = impl().keys().verification_key("control_plane", old_kid);
  ASSERT_TRUE(old_key);
  auto signed_by_old = [&] {
    ks::Json claims = ks::crypto::jws_parse(admin())->payload;
    return ks::crypto::jws_sign(*old_key, old_kid, claims, impl().rng(), {{"typ", "at+jwt"}});
  };
  // Within the grace period: still published and accepted (and so kept in the caches).
  clock_->advance(86400);
  EXPECT_TRUE(jwks_kids().count(old_kid));
  EXPECT_NE(ks::crypto::jws_parse(admin())->header["kid"], old_kid);
  EXPECT_EQ(call("GET", "/api/v2/clients", nullptr, signed_by_old()).status, 200);
  EXPECT_EQ(call("GET", "/api/v2/clients", nullptr, signed_by_old()).status, 200);
  // Past it (30 days and 5 minutes after the rotation), with no write in between: gone from the
  // JWKS, and refused.
  clock_->advance(30 * 86400);
  EXPECT_FALSE(jwks_kids().count(old_kid));
  EXPECT_EQ(call("GET", "/api/v2/clients", nullptr, signed_by_old()).status, 401);
  EXPECT_EQ(call("GET", "/api/v2/clients", nullptr, admin()).status, 200);
}

}  // namespace
