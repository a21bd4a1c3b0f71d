// /api/v2/hooks and the hooks' place in the flows, with a FakeHookRunner standing in for Lua
// (hooks/ tests the runtime itself; tests/http/test_hooks.py runs real scripts end to end).
#include <gtest/gtest.h>

#include "tests/unit/support/engine_fixture.h"
#include "tests/unit/support/fake_hooks.h"

namespace {

using ks::Json;
using ks::hooks::Trigger;
using ks::http::Response;
using ks::test::FakeHookRunner;

class HooksTest : public ks::test::EngineTest {
 protected:
  void SetUp() override {
    EngineTest::SetUp();
    runner_ = std::make_shared<FakeHookRunner>();
    open_engine([&](ks::Config&, ks::Engine::Deps& d) { d.hooks = runner_; });
    tok_ = admin();
    ASSERT_EQ(api("POST", "", "/tenants", {{"id", "acme"}}).status, 201);
  }

  Response api(const std::string& method, const std::string& tenant, const std::string& path,
               const Json& b = nullptr) {
    return call(method, (tenant.empty() ? "" : "/t/" + tenant) + "/api/v2" + path, b, tok_);
  }

  Json hook(const std::string& tenant, Json b) {
    if (!b.contains("code")) b["code"] = "function f() end";
    auto r = api("POST", tenant, "/hooks", b);
    EXPECT_EQ(r.status, 201) << r.body;
    return body(r);
  }

  // An M2M client of acme with a grant to https://api.acme.test; returns {id, secret}.
  std::pair<std::string, std::string> m2m() {
    EXPECT_EQ(api("POST", "acme", "/resource-servers",
                  {{"identifier", "https://api.acme.test"}, {"name", "Acme API"}})
                  .status,
              201);
    auto c =
        body(api("POST", "acme", "/clients", {{"name", "svc"}, {"app_type", "non_interactive"}}));
    const std::string id = c["client_id"], secret = c["client_secret"];
    EXPECT_EQ(
        api("POST", "acme", "/client-grants",
            {{"client_id", id}, {"audience", "https://api.acme.test"}, {"scope", Json::array()}})
            .status,
        201);
    return {id, secret};
  }

  Response exchange(const std::string& id, const std::string& secret) {
    return call("POST", "/t/acme/oauth/token",
                "grant_type=client_credentials&client_id=" + id + "&client_secret=" + secret +
                    "&audience=https%3A%2F%2Fapi.acme.test",
                "", "application/x-www-form-urlencoded");
  }

  static Json payload(const std::string& jwt) {
    const auto a = jwt.find('.'), b = jwt.find('.', a + 1);
    return Json::parse(*ks::crypto::base64url_decode(jwt.substr(a + 1, b - a - 1)));
  }

  std::shared_ptr<FakeHookRunner> runner_;
  std::string tok_;
};

TEST_F(HooksTest, CreateListGetPatchDelete) {
  Json h = hook("acme", {{"name", "claims"},
                         {"trigger_id", "post-login"},
                         {"priority", 5},
                         {"metadata", {{"team", "id"}}}});
  const std::string id = h["id"];
  EXPECT_TRUE(id.starts_with("hk_"));
  EXPECT_EQ(h["enabled"], true);
  EXPECT_EQ(h["priority"], 5);
  EXPECT_EQ(h["trigger_id"], "post-login");
  EXPECT_EQ(h["metadata"]["team"], "id");
  EXPECT_TRUE(h.contains("created_at"));
  hook("acme", {{"trigger_id", "credentials-exchange"}});

  EXPECT_EQ(body(api("GET", "acme", "/hooks")).size(), 2u);
  auto only = body(api("GET", "acme", "/hooks?trigger_id=post-login"));
  ASSERT_EQ(only.size(), 1u);
  EXPECT_EQ(only[0]["id"], id);
  EXPECT_EQ(body(api("GET", "acme", "/hooks?triggerId=credentials-exchange")).size(), 1u);
  EXPECT_EQ(api("GET", "acme", "/hooks?trigger_id=nope").status, 400);
  EXPECT_EQ(body(api("GET", "acme", "/hooks/" + id))["name"], "claims");
  EXPECT_EQ(body(api("GET", "", "/hooks")).size(), 0u) << "hooks belong to their tenant";

  auto p = api("PATCH", "acme", "/hooks/" + id, {{"enabled", false}, {"code", "x = 1"}});
  ASSERT_EQ(p.status, 200) << p.body;
  EXPECT_EQ(body(p)["enabled"], false);
  EXPECT_EQ(body(p)["code"], "x = 1");
  EXPECT_EQ(body(p)["priority"], 5);
  EXPECT_EQ(api("DELETE", "acme", "/hooks/" + id).status, 204);
  auto gone = api("GET", "acme", "/hooks/" + id);
  EXPECT_EQ(gone.status, 404);
  EXPECT_EQ(body(gone)["errorCode"], "inexistent_hook");
  EXPECT_EQ(api("DELETE", "acme", "/hooks/" + id).status, 404);
}

TEST_F(HooksTest, BadInputIsA400AndChangesNothing) {
  auto syntax =
      api("POST", "acme", "/hooks", {{"trigger_id", "post-login"}, {"code", "syntax error"}});
  EXPECT_EQ(syntax.status, 400);
  EXPECT_NE(body(syntax)["message"].get<std::string>().find(":1: syntax error"), std::string::npos)
      << syntax.body;
  EXPECT_EQ(api("POST", "acme", "/hooks", {{"trigger_id", "pre-login"}, {"code", ""}}).status, 400);
  EXPECT_EQ(api("POST", "acme", "/hooks", {{"trigger_id", "post-login"}}).status, 400);
  EXPECT_EQ(api("POST", "acme", "/hooks", {{"trigger_id", "post-login"}, {"code", 5}}).status, 400);
  EXPECT_EQ(api("POST", "acme", "/hooks", {{"trigger_id", "sync-filter"}, {"code", ""}}).status,
            400)
      << "sync filters run on the control plane only";
  EXPECT_EQ(api("POST", "acme", "/hooks",
                {{"trigger_id", "post-login"}, {"code", ""}, {"metadata", {{"inheritable", true}}}})
                .status,
            400)
      << "only the control plane's hooks are inherited";
  EXPECT_EQ(
      api("POST", "", "/hooks",
          {{"trigger_id", "post-login"}, {"code", ""}, {"metadata", {{"inheritable", "yes"}}}})
          .status,
      400);
  EXPECT_EQ(api("POST", "acme", "/hooks",
                {{"trigger_id", "post-login"}, {"code", ""}, {"priority", 2000000}})
                .status,
            400);
  EXPECT_EQ(
      api("POST", "acme", "/hooks", {{"trigger_id", "post-login"}, {"code", ""}, {"x", 1}}).status,
      400);
  EXPECT_EQ(body(api("GET", "acme", "/hooks")).size(), 0u);

  const std::string id = hook("acme", {{"trigger_id", "post-login"}})["id"];
  EXPECT_EQ(api("PATCH", "acme", "/hooks/" + id, {{"code", "syntax error"}}).status, 400);
  EXPECT_EQ(api("PATCH", "acme", "/hooks/" + id, {{"trigger_id", "credentials-exchange"}}).status,
            400);
  EXPECT_EQ(body(api("GET", "acme", "/hooks/" + id))["code"], "function f() end");
  EXPECT_EQ(api("POST", "", "/hooks", {{"trigger_id", "sync-filter"}, {"code", ""}}).status, 201);
}

TEST_F(HooksTest, ATenantHasAtMostFiftyHooks) {
  for (int i = 0; i < 50; ++i) hook("acme", {{"trigger_id", "post-login"}, {"enabled", false}});
  auto r = api("POST", "acme", "/hooks", {{"trigger_id", "post-login"}, {"code", ""}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(body(r)["errorCode"], "too_many_entities");
}

TEST_F(HooksTest, WithoutARuntimeTheApiAnswers501) {
  open_engine();
  tok_ = admin();
  auto r = api("POST", "", "/hooks", {{"trigger_id", "post-login"}, {"code", ""}});
  EXPECT_EQ(r.status, 501);
  EXPECT_EQ(body(r)["statusCode"], 501);
}

TEST_F(HooksTest, CredentialsExchangeSetsClaimsOrDenies) {
  auto [id, secret] = m2m();
  runner_->clear();
  EXPECT_EQ(exchange(id, secret).status, 200);
  EXPECT_TRUE(runner_->calls().empty()) << "a tenant without hooks pays nothing";

  hook("acme", {{"name", "second"}, {"trigger_id", "credentials-exchange"}, {"priority", 10}});
  hook("acme", {{"name", "first"}, {"trigger_id", "credentials-exchange"}, {"priority", -1}});
  hook("acme", {{"name", "off"}, {"trigger_id", "credentials-exchange"}, {"enabled", false}});
  runner_->set([](Trigger t, const ks::hooks::Script& s, const Json& ev, ks::hooks::Outcome& out) {
    ASSERT_EQ(t, Trigger::kCredentialsExchange);
    out.access_token_claims["https://acme.test/by"] = s.name;
    out.access_token_claims["client_name"] = ev["client"]["name"];
    out.access_token_claims["sub"] = "forged";  // reserved: never reaches the token
  });
  runner_->clear();
  auto r = exchange(id, secret);
  ASSERT_EQ(r.status, 200) << r.body;
  Json at = payload(body(r)["access_token"]);
  EXPECT_EQ(at["https://acme.test/by"], "second") << "priority order: the later hook wins";
  EXPECT_EQ(at["client_name"], "svc");
  EXPECT_EQ(at["sub"], id + "@clients");
  auto calls = runner_->calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].script, "acme/first");
  EXPECT_EQ(calls[1].script, "acme/second");
  EXPECT_EQ(calls[0].event["resource_server"]["identifier"], "https://api.acme.test");
  EXPECT_EQ(calls[0].event["tenant"]["id"], "acme");
  EXPECT_EQ(calls[0].event["request"]["method"], "POST");

  runner_->set([](Trigger, const ks::hooks::Script&, const Json&, ks::hooks::Outcome& out) {
    out.denied = "no tokens on Sundays";
  });
  auto denied = exchange(id, secret);
  EXPECT_EQ(denied.status, 403);
  EXPECT_EQ(body(denied)["error"], "access_denied");
  EXPECT_EQ(body(denied)["error_description"], "no tokens on Sundays");
  auto logs = body(api("GET", "acme", "/logs"));
  bool logged = false;
  for (const auto& l : logs)
    logged = logged || (l["type"] == "feccft" && l["description"].get<std::string>().find(
                                                     "no tokens on Sundays") != std::string::npos);
  EXPECT_TRUE(logged) << logs.dump();
}

TEST_F(HooksTest, InheritableControlPlaneHooksRunAfterTheChildsOwn) {
  auto [id, secret] = m2m();
  hook("", {{"name", "platform"},
            {"trigger_id", "credentials-exchange"},
            {"priority", -100},
            {"metadata", {{"inheritable", true}}}});
  hook("", {{"name", "cp-only"}, {"trigger_id", "credentials-exchange"}});
  hook("acme", {{"name", "own"}, {"trigger_id", "credentials-exchange"}, {"priority", 100}});
  runner_->set([](Trigger, const ks::hooks::Script& s, const Json&, ks::hooks::Outcome& out) {
    out.access_token_claims["last"] = s.tenant + "/" + s.name;
  });
  runner_->clear();
  auto r = exchange(id, secret);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(payload(body(r)["access_token"])["last"], "control_plane/platform");
  auto calls = runner_->calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].script, "acme/own");
  EXPECT_EQ(calls[1].script, "control_plane/platform");

  // A change to the control plane's hook reaches the child at once (state versions).
  const std::string platform =
      body(api("GET", "", "/hooks?trigger_id=credentials-exchange"))[0]["id"];
  ASSERT_EQ(api("PATCH", "", "/hooks/" + platform, {{"enabled", false}}).status, 200);
  runner_->clear();
  ASSERT_EQ(exchange(id, secret).status, 200);
  ASSERT_EQ(runner_->calls().size(), 1u);
  EXPECT_EQ(runner_->calls()[0].script, "acme/own");
}

}  // namespace
