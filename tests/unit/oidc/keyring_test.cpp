// KeyRing: lazily generated per-tenant keys, parsed keys cached in a bounded LRU.
#include "core/oidc/keyring.h"

#include <gtest/gtest.h>

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

}  // namespace
