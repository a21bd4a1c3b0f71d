// The per-tenant state cache (core/tenancy/state.*): what requests read of a tenant is read from
// the store once per state version, shared between a control plane's children, bounded, and
// refreshed by any write of a state kind — this engine's, or another process's on the same files.
#include "core/tenancy/state.h"

#include <gtest/gtest.h>

#include <string>

#include "core/engine_impl.h"
#include "tests/unit/support/engine_fixture.h"

using ks::Json;
using ks::http::Response;
namespace tenancy = ks::tenancy;

namespace {

constexpr const char* kCp = "control_plane";

class StateCache : public ks::test::EngineTest {
 public:
  Response manage(const std::string& tenant, const std::string& method, const std::string& path,
                  const Json& body = nullptr) {
    return engine_->manage(tenant, method, path, body);
  }
  void create(const std::string& id) {
    ASSERT_EQ(manage(kCp, "POST", "/tenants", {{"id", id}}).status, 201) << id;
  }
  tenancy::TenantService& tenants() { return impl().tenants(); }
  size_t loads() { return tenants().states().loads(); }
};

TEST_F(StateCache, ReadOncePerVersionAndRefreshedByAnyStateWrite) {
  create("acme");
  auto first = tenants().state("acme");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->id, "acme");
  EXPECT_FALSE(first->control_plane);
  const size_t loaded = loads();
  EXPECT_EQ(tenants().state("acme"), first) << "unchanged: the same state, not read again";
  EXPECT_EQ(loads(), loaded);

  // Writes of non-state kinds (users, logs) leave it cached.
  ASSERT_EQ(manage("acme", "POST", "/users",
                   {{"email", "ann@example.com"},
                    {"password", "correct horse battery"},
                    {"connection", "Username-Password-Authentication"}})
                .status,
            201);
  EXPECT_EQ(tenants().state("acme"), first);
  EXPECT_EQ(loads(), loaded);

  // A settings write is seen by the very next lookup.
  ASSERT_EQ(
      manage("acme", "PATCH", "/tenants/settings", {{"default_audience", "https://api"}}).status,
      200);
  auto second = tenants().state("acme");
  ASSERT_TRUE(second);
  EXPECT_NE(second, first);
  EXPECT_EQ(second->settings.value("default_audience", ""), "https://api");
  EXPECT_EQ(loads(), loaded + 1);
  // The old state stays valid for whoever still holds it.
  EXPECT_FALSE(first->settings.contains("default_audience"));
}

TEST_F(StateCache, RequestsOfACachedTenantReadNoState) {
  create("acme");
  ASSERT_EQ(call("GET", "/t/acme/.well-known/openid-configuration").status, 200);
  // The first JWKS generates the tenant's keys: a write of its state, read again by the next.
  ASSERT_EQ(call("GET", "/t/acme/.well-known/jwks.json").status, 200);
  ASSERT_EQ(call("GET", "/t/acme/.well-known/jwks.json").status, 200);
  const size_t loaded = loads();
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(call("GET", "/t/acme/.well-known/openid-configuration").status, 200);
    ASSERT_EQ(call("GET", "/t/acme/.well-known/jwks.json").status, 200);
  }
  EXPECT_EQ(loads(), loaded);
}

// Values kept with a state (JWKS, signing key, clients and their secrets, grants) follow every
// write at once: a write makes a new state.
TEST_F(StateCache, KeptValuesFollowEveryWrite) {
  create("acme");
  Json client = body(manage("acme", "POST", "/clients",
                            {{"name", "svc"}, {"grant_types", {"client_credentials"}}}));
  const std::string id = client["client_id"], secret = client["client_secret"];
  Json grant = body(manage(
      "acme", "POST", "/client-grants",
      {{"client_id", id}, {"audience", "urn:keystead:management"}, {"scope", {"read:users"}}}));
  token("/t/acme", id, secret);
  const std::string jwks = call("GET", "/t/acme/.well-known/jwks.json").body;
  EXPECT_EQ(call("GET", "/t/acme/.well-known/jwks.json").body, jwks);

  // A new secret: the old one is refused by the very next request.
  Json rotated = body(manage("acme", "POST", "/clients/" + id + "/rotate-secret"));
  const std::string form = "grant_type=client_credentials&audience=urn%3Akeystead%3Amanagement";
  EXPECT_EQ(
      call("POST", "/t/acme/oauth/token", form + "&client_id=" + id + "&client_secret=" + secret,
           "", "application/x-www-form-urlencoded")
          .status,
      401);
  token("/t/acme", id, rotated["client_secret"]);

  // A key rotation shows in the JWKS at once, and new tokens carry the new kid.
  ASSERT_EQ(manage("acme", "POST", "/keys/signing/rotate").status, 201);
  EXPECT_NE(call("GET", "/t/acme/.well-known/jwks.json").body, jwks);

  // A deleted grant stops the next token.
  ASSERT_EQ(manage("acme", "DELETE", "/client-grants/" + grant["id"].get<std::string>()).status,
            204);
  EXPECT_EQ(call("POST", "/t/acme/oauth/token",
                 form + "&client_id=" + id +
                     "&client_secret=" + rotated["client_secret"].get<std::string>(),
                 "", "application/x-www-form-urlencoded")
                .status,
            403);
}

// Event loops answer discovery and JWKS only from memory (Engine::handle_inline): anything that
// would load, compute or generate goes to a worker thread — nullopt, with nothing done.
TEST_F(StateCache, InlineAnswersComeOnlyFromMemory) {
  create("acme");
  auto get = [](const std::string& target) {
    ks::http::Request r;
    r.method = "GET";
    r.set_target(target);
    r.add_header("host", "id.test");
    return r;
  };
  auto keys_of_acme = [&] {
    size_t n = 0;
    impl().store().read("acme", [&](ks::store::Tx& tx) { n = tx.count("signing_key"); });
    return n;
  };
  const auto jwks = get("/t/acme/.well-known/jwks.json");
  const auto discovery = get("/t/acme/.well-known/openid-configuration");
  EXPECT_FALSE(engine_->handle_inline(jwks)) << "keys are generated off the loop";
  EXPECT_EQ(keys_of_acme(), 0u);
  EXPECT_FALSE(engine_->handle_inline(discovery));
  ASSERT_EQ(engine_->handle(jwks).status, 200);  // generates the keys
  EXPECT_EQ(keys_of_acme(), 2u);
  EXPECT_FALSE(engine_->handle_inline(jwks)) << "the key write made a new state, not loaded yet";
  const std::string body = engine_->handle(jwks).body;
  auto inline_jwks = engine_->handle_inline(jwks);
  ASSERT_TRUE(inline_jwks);
  EXPECT_EQ(inline_jwks->status, 200);
  EXPECT_EQ(inline_jwks->body, body);
  ASSERT_EQ(engine_->handle(discovery).status, 200);
  auto inline_discovery = engine_->handle_inline(discovery);
  ASSERT_TRUE(inline_discovery);
  EXPECT_EQ(inline_discovery->body, engine_->handle(discovery).body);

  // A state write: the next inline attempt does not load the new state.
  ASSERT_EQ(manage("acme", "PATCH", "/tenants/settings", {{"friendly_name", "Acme"}}).status, 200);
  const size_t loaded = loads();
  EXPECT_FALSE(engine_->handle_inline(discovery));
  EXPECT_EQ(loads(), loaded);
  // A suspended tenant's answer (403) is given from memory like any other.
  ASSERT_EQ(manage(kCp, "POST", "/tenants/acme/suspend").status, 200);
  ASSERT_EQ(engine_->handle(discovery).status, 403);
  auto suspended = engine_->handle_inline(discovery);
  ASSERT_TRUE(suspended);
  EXPECT_EQ(suspended->status, 403);

  // Only GETs of the two documents, and health checks.
  auto post = discovery;
  post.method = "POST";
  EXPECT_FALSE(engine_->handle_inline(post));
  EXPECT_FALSE(engine_->handle_inline(get("/t/acme/authorize?client_id=x")));
  auto health = engine_->handle_inline(get("/healthz"));
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

TEST_F(StateCache, ChildrenShareOneReadOfTheControlPlane) {
  for (const char* id : {"a1", "a2", "a3"}) create(id);
  auto a1 = tenants().state("a1"), a2 = tenants().state("a2"), a3 = tenants().state("a3");
  EXPECT_EQ(a1->platform, a2->platform);
  EXPECT_EQ(a2->platform, a3->platform);
  // A control-plane settings write reaches every child's effective settings.
  ASSERT_EQ(
      manage(kCp, "PATCH", "/tenants/settings", {{"default_audience", "https://shared"}}).status,
      200);
  for (const char* id : {"a1", "a2", "a3"}) {
    auto s = tenants().state(id);
    EXPECT_NE(s->platform, a1->platform) << id;
    EXPECT_EQ(s->settings.value("default_audience", ""), "https://shared") << id;
  }
  EXPECT_EQ(tenants().state("a1")->platform, tenants().state("a3")->platform);
}

TEST_F(StateCache, ControlPlaneConnectionsAndClientAreLent) {
  create("acme");
  const size_t before = tenants().state("acme")->platform->connections.size();
  ASSERT_EQ(manage(kCp, "POST", "/connections",
                   {{"name", "google"},
                    {"strategy", "google-oauth2"},
                    {"options", {{"client_id", "g"}, {"client_secret", "s"}}}})
                .status,
            201);
  auto s = tenants().state("acme");
  ASSERT_EQ(s->platform->connections.size(), before + 1);
  const auto* google = s->platform->first_of_strategy("google-oauth2");
  ASSERT_TRUE(google);
  EXPECT_EQ(google, s->platform->connection("google"));
  EXPECT_FALSE(google->data["options"].contains("client_secret")) << "secrets stay sealed";
  EXPECT_TRUE(google->data.contains("_secrets"));
}

TEST_F(StateCache, UnknownAndDeletedTenantsHaveNoState) {
  const size_t cached = tenants().states().size();
  EXPECT_EQ(tenants().state("nobody"), nullptr);
  EXPECT_EQ(tenants().states().size(), cached) << "unknown ids are not cached";
  create("gone");
  ASSERT_TRUE(tenants().state("gone"));
  ASSERT_EQ(manage(kCp, "DELETE", "/tenants/gone").status, 204);
  EXPECT_EQ(tenants().state("gone"), nullptr);
  EXPECT_EQ(call("GET", "/t/gone/.well-known/openid-configuration").status, 404);
}

TEST_F(StateCache, SuspensionIsSeenByTheNextRequest) {
  create("acme");
  ASSERT_EQ(call("GET", "/t/acme/.well-known/jwks.json").status, 200);
  ASSERT_EQ(manage(kCp, "POST", "/tenants/acme/suspend").status, 200);
  EXPECT_EQ(call("GET", "/t/acme/.well-known/jwks.json").status, 403);
  ASSERT_EQ(manage(kCp, "POST", "/tenants/acme/resume").status, 200);
  EXPECT_EQ(call("GET", "/t/acme/.well-known/jwks.json").status, 200);
}

TEST_F(StateCache, MemoryIsBounded) {
  for (int i = 0; i < 6; ++i) create("t" + std::to_string(i));
  tenancy::TenantStateCache small(impl(), 3);
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(small.get("t" + std::to_string(i)));
  EXPECT_EQ(small.size(), 3u);
  EXPECT_EQ(small.loads(), 6u);
  // The most recent three are cached; an evicted one is read again.
  ASSERT_TRUE(small.get("t5"));
  EXPECT_EQ(small.loads(), 6u);
  ASSERT_TRUE(small.get("t0"));
  EXPECT_EQ(small.loads(), 7u);
  EXPECT_EQ(small.size(), 3u);
}

// Another process (the `keystead` CLI) writing to the same database files: its writes raise the
// version this engine checks, so the next request sees them without any signal.
TEST_F(StateCache, AnotherProcessesWritesAreSeen) {
  const std::string path = dir_ + "/ks.db";
  open_engine(
      [&](ks::Config&, ks::Engine::Deps& deps) { deps.store = ks::store::open_sqlite(path); });
  create("acme");
  ASSERT_EQ(call("GET", "/t/acme/.well-known/jwks.json").status, 200);
  auto other = ks::store::open_sqlite(path);
  other->write(kCp, [](ks::store::Tx& cp) {
    auto r = cp.get("tenant", "acme");
    ASSERT_TRUE(r);
    r->data["status"] = "suspended";
    r->data["friendly_name"] = "Acme by the CLI";
    cp.update("tenant", "acme", r->data);
  });
  EXPECT_EQ(call("GET", "/t/acme/.well-known/jwks.json").status, 403);
  EXPECT_EQ(tenants().state("acme")->friendly_name(), "Acme by the CLI");
}

}  // namespace
