// The authorization-code flow end to end through Engine::handle: /authorize, the hosted login
// form, the code exchange with PKCE, refresh rotation and reuse detection, userinfo, logout.
#include <gtest/gtest.h>

#include <map>
#include <regex>

#include "core/engine_impl.h"
#include "core/oidc/flow.h"
#include "tests/unit/support/engine_fixture.h"

using ks::Json;
using ks::http::Request;
using ks::http::Response;
using ks::test::EngineTest;

using ks::test::header;
using ks::test::input_value;
using ks::test::query_of;
using ks::test::query_param;

namespace {

class LoginFlow : public EngineTest {
 public:
  void SetUp() override {
    EngineTest::SetUp();
    admin_ = admin();
    auto c = call("POST", "/api/v2/clients",
                  {{"name", "SPA"},
                   {"app_type", "spa"},
                   {"callbacks", {"https://app.test/cb"}},
                   {"allowed_logout_urls", {"https://app.test/bye"}},
                   {"web_origins", {"https://app.test"}},
                   {"grant_types", {"authorization_code", "refresh_token"}}},
                  admin_);
    ASSERT_EQ(c.status, 201) << c.body;
    client_ = Json::parse(c.body);
    auto u = call("POST", "/api/v2/users",
                  {{"email", "alice@example.com"},
                   {"password", "correct horse battery"},
                   {"connection", "Username-Password-Authentication"},
                   {"name", "Alice"}},
                  admin_);
    ASSERT_EQ(u.status, 201) << u.body;
    user_id_ = Json::parse(u.body)["user_id"];
    ASSERT_EQ(call("POST", "/api/v2/resource-servers",
                   {{"identifier", "https://api.test"},
                    {"allow_offline_access", true},
                    {"enforce_policies", true},
                    {"token_dialect", "access_token_authz"},
                    {"scopes", {{{"value", "read:things"}}, {{"value", "write:things"}}}}},
                   admin_)
                  .status,
              201);
  }

  static std::string verifier() { return std::string(43, 'v'); }
  static std::string challenge() {
    return ks::crypto::base64url_encode(ks::crypto::sha256(verifier()));
  }

  std::string authorize_url(
      const std::string& extra = "",
      const std::string& scope = "openid%20profile%20email%20offline_access") {
    return "/authorize?response_type=code&client_id=" + client_["client_id"].get<std::string>() +
           "&redirect_uri=" + ks::http::url_encode("https://app.test/cb") + "&scope=" + scope +
           "&state=st4te&nonce=n0nce"
           "&code_challenge=" +
           challenge() + "&code_challenge_method=S256" + extra;
  }

  // Walks /authorize → /u/login → callback; returns the callback URL.
  std::string login(const std::string& extra = "",
                    const std::string& password = "correct horse battery",
                    const std::string& scope = "openid%20profile%20email%20offline_access") {
    auto a = send("GET", authorize_url(extra, scope));
    EXPECT_EQ(a.status, 302);
    std::string loc = header(a, "location");
    if (loc.starts_with("https://app.test/")) return loc;
    EXPECT_TRUE(loc.starts_with("http://id.test/u/login?state=")) << loc;
    auto page = send("GET", loc.substr(std::string("http://id.test").size()));
    EXPECT_EQ(page.status, 200);
    const std::string state = input_value(page.body, "state"),
                      csrf = input_value(page.body, "_csrf");
    auto post =
        send("POST", "/u/login",
             "state=" + ks::http::url_encode(state) + "&_csrf=" + ks::http::url_encode(csrf) +
                 "&username=alice%40example.com&password=" + ks::http::url_encode(password));
    if (post.status != 302) return "status:" + std::to_string(post.status);
    return header(post, "location");
  }

  Response exchange(const std::string& code, const std::string& v = verifier()) {
    return send(
        "POST", "/oauth/token",
        "grant_type=authorization_code&client_id=" + client_["client_id"].get<std::string>() +
            "&code=" + ks::http::url_encode(code) +
            "&redirect_uri=" + ks::http::url_encode("https://app.test/cb") + "&code_verifier=" + v);
  }

  Response refresh(const std::string& rt) {
    return send("POST", "/oauth/token",
                "grant_type=refresh_token&client_id=" + client_["client_id"].get<std::string>() +
                    "&refresh_token=" + ks::http::url_encode(rt));
  }

  std::string admin_;
  Json client_;
  std::string user_id_;
};

}  // namespace

// A scope parameter is a set: any run of spaces or tabs separates, duplicates count once, order
// is kept (RFC 6749 §3.3).
TEST(Scopes, SplitAndJoin) {
  using ks::oidc::join_scope;
  using ks::oidc::split_scope;
  EXPECT_EQ(split_scope(""), std::vector<std::string>{});
  EXPECT_EQ(split_scope("  \t "), std::vector<std::string>{});
  EXPECT_EQ(split_scope("openid"), std::vector<std::string>{"openid"});
  EXPECT_EQ(split_scope(" read:a  write:a\tread:a openid "),
            (std::vector<std::string>{"read:a", "write:a", "openid"}));
  EXPECT_EQ(join_scope(split_scope("b a b  c")), "b a c");
}

TEST_F(LoginFlow, CodeFlowWithPkceIssuesVerifiableTokens) {
  auto cb = login();
  ASSERT_TRUE(cb.starts_with("https://app.test/cb?")) << cb;
  EXPECT_EQ(query_param(cb, "state"), "st4te");
  auto t = exchange(query_param(cb, "code"));
  ASSERT_EQ(t.status, 200) << t.body;
  auto body = Json::parse(t.body);
  auto id = ks::crypto::jws_parse(body["id_token"].get<std::string>());
  ASSERT_TRUE(id);
  EXPECT_EQ(id->payload["sub"], user_id_);
  EXPECT_EQ(id->payload["aud"], client_["client_id"]);
  EXPECT_EQ(id->payload["nonce"], "n0nce");
  EXPECT_EQ(id->payload["email"], "alice@example.com");
  EXPECT_EQ(id->payload["name"], "Alice");
  EXPECT_EQ(id->payload["auth_time"], 1'800'000'000);
  const std::string at = body["access_token"];
  EXPECT_EQ(id->payload["at_hash"],
            ks::crypto::base64url_encode(ks::crypto::sha256(at).substr(0, 16)));
  auto atj = ks::crypto::jws_parse(at);
  EXPECT_EQ(atj->header["typ"], "at+jwt");
  EXPECT_EQ(atj->payload["aud"], "http://id.test/userinfo");
  EXPECT_TRUE(body.contains("refresh_token"));

  // Userinfo with the access token.
  Request ui;
  ui.method = "GET";
  ui.set_target("/userinfo");
  ui.add_header("host", "id.test");
  ui.add_header("authorization", "Bearer " + at);
  auto info = engine_->handle(ui);
  ASSERT_EQ(info.status, 200) << info.body;
  EXPECT_EQ(Json::parse(info.body)["sub"], user_id_);

  // The code is single-use; its replay revokes the refresh token it issued.
  auto replay = exchange(query_param(cb, "code"));
  EXPECT_EQ(replay.status, 400);
  EXPECT_EQ(Json::parse(replay.body)["error"], "invalid_grant");
  EXPECT_EQ(refresh(body["refresh_token"]).status, 400);
}

TEST_F(LoginFlow, WrongVerifierAndExpiredCodeAreRefused) {
  auto cb = login();
  auto bad = exchange(query_param(cb, "code"), std::string(43, 'x'));
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(Json::parse(bad.body)["error"], "invalid_grant");
  // The session answers the next /authorize without a form; let that code expire.
  auto cb2 = login();
  ASSERT_TRUE(cb2.starts_with("https://app.test/cb?")) << cb2;
  clock_->advance(61);
  EXPECT_EQ(exchange(query_param(cb2, "code")).status, 400);
}

TEST_F(LoginFlow, RefreshRotationAndReuseDetection) {
  auto body = Json::parse(exchange(query_param(login(), "code")).body);
  const std::string rt1 = body["refresh_token"];
  auto r2 = refresh(rt1);
  ASSERT_EQ(r2.status, 200) << r2.body;
  const std::string rt2 = Json::parse(r2.body)["refresh_token"];
  EXPECT_NE(rt1, rt2);
  // Reusing rt1 revokes the family: rt2 dies too.
  auto reuse = refresh(rt1);
  EXPECT_EQ(reuse.status, 400);
  EXPECT_EQ(Json::parse(reuse.body)["error"], "invalid_grant");
  EXPECT_EQ(refresh(rt2).status, 400);
}

TEST_F(LoginFlow, SilentAuthAndPromptLogin) {
  auto none = send("GET", authorize_url("&prompt=none"));
  ASSERT_EQ(none.status, 302);
  EXPECT_EQ(query_param(header(none, "location"), "error"), "login_required");
  login();
  auto silent = send("GET", authorize_url("&prompt=none&response_mode=web_message"));
  ASSERT_EQ(silent.status, 200);
  EXPECT_NE(silent.body.find("authorization_response"), std::string::npos);
  EXPECT_NE(silent.body.find("\"https://app.test\""), std::string::npos);
  auto forced = send("GET", authorize_url("&prompt=login"));
  EXPECT_TRUE(header(forced, "location").starts_with("http://id.test/u/login"));
}

TEST_F(LoginFlow, WrongPasswordShowsFormAndLogsFailure) {
  auto r = login("", "wrong password!!");
  EXPECT_EQ(r, "status:401");
  auto logs = Json::parse(call("GET", "/api/v2/logs", nullptr, admin_).body);
  ASSERT_TRUE(logs.is_array());
  ASSERT_FALSE(logs.empty());
  EXPECT_EQ(logs[0]["type"], "fp");
}

TEST_F(LoginFlow, OpenRedirectIsImpossible) {
  auto r = send(
      "GET", "/authorize?response_type=code&client_id=" + client_["client_id"].get<std::string>() +
                 "&redirect_uri=https%3A%2F%2Fevil.test%2Fcb&code_challenge=" + challenge() +
                 "&code_challenge_method=S256");
  EXPECT_EQ(r.status, 400);
  EXPECT_TRUE(header(r, "location").empty());
  // Public clients must use PKCE.
  auto nopkce = send(
      "GET", "/authorize?response_type=code&client_id=" + client_["client_id"].get<std::string>() +
                 "&redirect_uri=" + ks::http::url_encode("https://app.test/cb"));
  EXPECT_EQ(query_param(header(nopkce, "location"), "error"), "invalid_request");
}

TEST_F(LoginFlow, OrganizationMembershipAndRbac) {
  auto role = Json::parse(call("POST", "/api/v2/roles", {{"name", "thing-reader"}}, admin_).body);
  call("POST", "/api/v2/roles/" + role["id"].get<std::string>() + "/permissions",
       {{"permissions",
         {{{"resource_server_identifier", "https://api.test"},
           {"permission_name", "read:things"}}}}},
       admin_);
  auto org = Json::parse(call("POST", "/api/v2/organizations", {{"name", "east"}}, admin_).body);
  const std::string oid = org["id"];
  auto denied = login("&organization=east&audience=https%3A%2F%2Fapi.test");
  EXPECT_EQ(query_param(denied, "error"), "access_denied");
  EXPECT_EQ(query_param(denied, "error_description"),
            "User is not a member of the specified organization");
  const std::string uenc = ks::http::url_encode(user_id_);
  call("POST", "/api/v2/organizations/" + oid + "/members", {{"members", {user_id_}}}, admin_);
  call("POST", "/api/v2/organizations/" + oid + "/members/" + uenc + "/roles",
       {{"roles", {role["id"]}}}, admin_);
  auto cb = login("&organization=east&audience=https%3A%2F%2Fapi.test", "correct horse battery",
                  "openid%20read:things%20write:things");
  auto body = Json::parse(exchange(query_param(cb, "code")).body);
  auto at = ks::crypto::jws_parse(body["access_token"].get<std::string>());
  EXPECT_EQ(at->payload["org_id"], oid);
  EXPECT_EQ(at->payload["org_name"], "east");
  EXPECT_EQ(at->payload["permissions"], Json::array({"read:things"}));
  EXPECT_EQ(at->payload["scope"], "openid read:things");
}

TEST_F(LoginFlow, LogoutEndsSessionAndChecksReturnTo) {
  login();
  auto bad = send("GET", "/v2/logout?client_id=" + client_["client_id"].get<std::string>() +
                             "&returnTo=https%3A%2F%2Fevil.test");
  EXPECT_EQ(bad.status, 400);
  auto ok = send("GET", "/v2/logout?client_id=" + client_["client_id"].get<std::string>() +
                            "&returnTo=https%3A%2F%2Fapp.test%2Fbye");
  EXPECT_EQ(ok.status, 302);
  EXPECT_EQ(header(ok, "location"), "https://app.test/bye");
  auto none = send("GET", authorize_url("&prompt=none"));
  EXPECT_EQ(query_param(header(none, "location"), "error"), "login_required");
}

TEST_F(LoginFlow, SignupCreatesUserAndSession) {
  auto a = send("GET", authorize_url("&screen_hint=signup"));
  std::string loc = header(a, "location");
  ASSERT_TRUE(loc.starts_with("http://id.test/u/signup?state=")) << loc;
  auto page = send("GET", loc.substr(14));
  ASSERT_EQ(page.status, 200);
  const std::string base = "state=" + ks::http::url_encode(input_value(page.body, "state")) +
                           "&_csrf=" + ks::http::url_encode(input_value(page.body, "_csrf"));
  EXPECT_EQ(send("POST", "/u/signup", base + "&username=bob%40example.com&password=short").status,
            400);
  EXPECT_EQ(send("POST", "/u/signup",
                 base.substr(0, base.find("&_csrf")) +
                     "&_csrf=forged&username=bob%40example.com&password=long+enough+pw")
                .status,
            403);
  auto ok = send("POST", "/u/signup", base + "&username=bob%40example.com&password=long+enough+pw");
  ASSERT_EQ(ok.status, 302) << ok.body;
  EXPECT_TRUE(header(ok, "location").starts_with("https://app.test/cb?code="));
  auto users = Json::parse(
      call("GET", "/api/v2/users-by-email?email=bob%40example.com", nullptr, admin_).body);
  EXPECT_EQ(users.size(), 1u);
}

TEST_F(LoginFlow, UsersCannotAskForManagementScopesTheyDoNotHold) {
  const std::string scope = "openid%20read:users%20admin:organizations%20create:tenants";
  auto cb = login("&audience=urn%3Akeystead%3Amanagement", "correct horse battery", scope);
  ASSERT_TRUE(cb.starts_with("https://app.test/cb?")) << cb;
  auto body = Json::parse(exchange(query_param(cb, "code")).body);
  auto at = ks::crypto::jws_parse(body["access_token"].get<std::string>());
  ASSERT_TRUE(at);
  EXPECT_EQ(at->payload["scope"], "openid");
  EXPECT_EQ(at->payload["permissions"], Json::array());
  // Such a token reads nothing.
  EXPECT_EQ(call("GET", "/api/v2/users", nullptr, body["access_token"]).status, 403);
}

// The portal scenario of DESIGN.md: a control-plane user creates her tenant self-serve, gets an
// organization token for it, manages it, and nothing else.
TEST_F(LoginFlow, SelfServeTenantAndOrgScopedManagement) {
  const std::string mgmt_scopes =
      "openid%20read:users%20create:users%20read:tenants%20delete:tenants";
  auto cb = login("&audience=urn%3Akeystead%3Amanagement", "correct horse battery", mgmt_scopes);
  const std::string user_token =
      Json::parse(exchange(query_param(cb, "code")).body)["access_token"];
  auto created = call("POST", "/api/v2/tenants",
                      {{"id", "coffee-shop"}, {"friendly_name", "Coffee"}}, user_token);
  ASSERT_EQ(created.status, 201) << created.body;
  ASSERT_EQ(call("POST", "/api/v2/tenants", {{"id", "other"}}, admin_).status, 201);

  // The organization token for coffee-shop carries the Tenant Admin permissions.
  auto cb2 = login("&audience=urn%3Akeystead%3Amanagement&organization=coffee-shop",
                   "correct horse battery", mgmt_scopes);
  ASSERT_TRUE(cb2.starts_with("https://app.test/cb?code=")) << cb2;
  const std::string org_token =
      Json::parse(exchange(query_param(cb2, "code")).body)["access_token"];
  auto claims = ks::crypto::jws_parse(org_token)->payload;
  EXPECT_EQ(claims["org_name"], "coffee-shop");
  EXPECT_EQ(call("GET", "/t/coffee-shop/api/v2/users", nullptr, org_token).status, 200);
  EXPECT_EQ(call("POST", "/t/coffee-shop/api/v2/users",
                 {{"email", "barista@example.com"},
                  {"password", "long enough pw"},
                  {"connection", "Username-Password-Authentication"}},
                 org_token)
                .status,
            201);
  EXPECT_EQ(call("GET", "/t/other/api/v2/users", nullptr, org_token).status, 403);
  EXPECT_EQ(call("GET", "/api/v2/users", nullptr, org_token).status, 403);
  // Listing tenants shows only hers, to the user and to the org token.
  for (const auto& tok : {user_token, org_token}) {
    auto list = Json::parse(call("GET", "/api/v2/tenants", nullptr, tok).body);
    ASSERT_EQ(list.size(), 1u) << list.dump();
    EXPECT_EQ(list[0]["id"], "coffee-shop");
  }
  EXPECT_EQ(Json::parse(call("GET", "/api/v2/tenants", nullptr, admin_).body).size(), 3u);
  EXPECT_EQ(call("GET", "/api/v2/tenants/other", nullptr, org_token).status, 403);
  EXPECT_EQ(call("GET", "/api/v2/tenants/coffee-shop", nullptr, org_token).status, 200);

  // Platform staff may read any tenant; each such call is in that tenant's audit log.
  EXPECT_EQ(call("GET", "/t/coffee-shop/api/v2/users", nullptr, admin_).status, 200);
  auto logs =
      Json::parse(call("GET", "/t/coffee-shop/api/v2/logs?type=sapi", nullptr, org_token).body);
  ASSERT_GE(logs.size(), 1u);
  EXPECT_EQ(logs[0]["details"]["path"], "/t/coffee-shop/api/v2/users");

  // Self-service off: a user token can no longer create tenants.
  ASSERT_EQ(call("PATCH", "/api/v2/tenants/control_plane",
                 {{"settings", {{"self_service_tenants", false}}}}, admin_)
                .status,
            200);
  EXPECT_EQ(call("POST", "/api/v2/tenants", {{"id", "second"}}, user_token).status, 403);
  // The org token may delete its own tenant.
  EXPECT_EQ(call("DELETE", "/api/v2/tenants/other", nullptr, org_token).status, 403);
  EXPECT_EQ(call("DELETE", "/api/v2/tenants/coffee-shop", nullptr, org_token).status, 204);
}

TEST_F(LoginFlow, SuspendAndResume) {
  ASSERT_EQ(call("POST", "/api/v2/tenants", {{"id", "sleepy"}}, admin_).status, 201);
  auto s = call("POST", "/api/v2/tenants/sleepy/suspend", nullptr, admin_);
  ASSERT_EQ(s.status, 200) << s.body;
  EXPECT_EQ(Json::parse(s.body)["status"], "suspended");
  auto r = send("GET", "/t/sleepy/.well-known/openid-configuration");
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(call("POST", "/api/v2/tenants/control_plane/suspend", nullptr, admin_).status, 403);
  EXPECT_EQ(call("POST", "/api/v2/tenants/sleepy/resume", nullptr, admin_).status, 200);
  EXPECT_EQ(send("GET", "/t/sleepy/.well-known/openid-configuration").status, 200);
}

TEST_F(LoginFlow, AbandonedLoginTransactionsAreSweptByLaterOnes) {
  auto count = [&] {
    size_t n = 0;
    impl().store().read("control_plane", [&](ks::store::Tx& tx) { n = tx.count("login_tx"); });
    return n;
  };
  for (int i = 0; i < 10; ++i) ASSERT_EQ(send("GET", authorize_url()).status, 302);
  ASSERT_EQ(count(), 10u);
  // Not expired yet: a new one sweeps nothing.
  ASSERT_EQ(send("GET", authorize_url()).status, 302);
  EXPECT_EQ(count(), 11u);
  clock_->advance(24 * 3600);  // every one of them has expired
  ASSERT_EQ(send("GET", authorize_url()).status, 302);
  EXPECT_EQ(count(), 11u - 4u + 1u);  // four swept per insert
  for (int i = 0; i < 3; ++i) ASSERT_EQ(send("GET", authorize_url()).status, 302);
  EXPECT_EQ(count(), 4u);  // only the four live ones remain
}
