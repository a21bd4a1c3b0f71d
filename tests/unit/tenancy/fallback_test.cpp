// Runtime fallback and settings constraints (core/tenancy/fallback.*): the merge rules as pure
// functions, then a child tenant's logins through Engine::handle inheriting the control plane's
// client URL lists, connections (with their sealed secrets) and settings.
#include "core/tenancy/fallback.h"

#include <gtest/gtest.h>

#include <map>
#include <regex>

#include "core/http/http.h"
#include "core/net/http_client.h"
#include "tests/unit/support/engine_fixture.h"

using ks::Json;
using ks::http::Response;
namespace tenancy = ks::tenancy;

using ks::test::header;
using ks::test::input_value;
using ks::test::query_of;
using ks::test::query_param;

namespace {

// ---- pure merge rules -------------------------------------------------------------------------

TEST(UnionLists, ControlPlaneFirstDuplicatesDropped) {
  EXPECT_EQ(tenancy::union_lists(Json{"a", "b", "a"}, Json{"c", "b", "d"}),
            (Json{"a", "b", "c", "d"}));
  EXPECT_EQ(tenancy::union_lists(Json::array(), Json{"x"}), Json{"x"});
  EXPECT_EQ(tenancy::union_lists(Json{"x"}, nullptr), Json{"x"});
  EXPECT_EQ(tenancy::union_lists(nullptr, "not a list"), Json::array());
}

TEST(MergeClient, OnlyTheFourUrlListsAreUnions) {
  const Json platform = {{"client_id", "p"},
                         {"name", "Platform"},
                         {"callbacks", {"https://p/cb", "https://shared/cb"}},
                         {"web_origins", {"https://p"}},
                         {"allowed_logout_urls", {"https://p/bye"}},
                         {"allowed_origins", {"https://po"}},
                         {"grant_types", {"client_credentials"}}};
  // An empty list of the child is a union too, not a "present value" that stops the fallback.
  const Json child = {{"client_id", "c"},
                      {"name", "Child"},
                      {"callbacks", {"https://c/cb", "https://shared/cb"}},
                      {"web_origins", Json::array()},
                      {"grant_types", {"authorization_code"}}};
  const Json m = tenancy::merge_client(child, platform);
  EXPECT_EQ(m["callbacks"], (Json{"https://p/cb", "https://shared/cb", "https://c/cb"}));
  EXPECT_EQ(m["web_origins"], Json{"https://p"});
  EXPECT_EQ(m["allowed_logout_urls"], Json{"https://p/bye"});
  EXPECT_EQ(m["allowed_origins"], Json{"https://po"});
  EXPECT_EQ(m["client_id"], "c");
  EXPECT_EQ(m["name"], "Child");
  EXPECT_EQ(m["grant_types"], Json{"authorization_code"});
}

TEST(MergeOptions, ObjectsMergeArraysAndScalarsReplace) {
  const Json platform = {{"client_id", "pid"},
                         {"scope", {"openid", "email", "profile"}},
                         {"nested", {{"a", 1}, {"b", {{"x", 1}, {"y", 2}}}, {"list", {1, 2}}}},
                         {"mode", "strict"}};
  const Json child = {
      {"scope", {"openid"}}, {"nested", {{"b", {{"y", 20}}}, {"list", {3}}}}, {"mode", 7}};
  const Json m = tenancy::merge_options(child, platform);
  EXPECT_EQ(m["client_id"], "pid");                          // missing: from the platform
  EXPECT_EQ(m["scope"], Json{"openid"});                     // arrays replace, never union
  EXPECT_EQ(m["nested"]["a"], 1);                            // objects merge...
  EXPECT_EQ(m["nested"]["b"], (Json{{"x", 1}, {"y", 20}}));  // ...recursively
  EXPECT_EQ(m["nested"]["list"], Json{3});
  EXPECT_EQ(m["mode"], 7);  // a scalar replaces, whatever its type
}

TEST(MergeOptions, APresentKeyNeverFallsBack) {
  const Json platform = {{"s", "p"}, {"n", "p"}, {"a", {1}}, {"o", {{"k", 1}}}, {"f", true}};
  const Json child = {{"s", ""}, {"n", nullptr}, {"a", Json::array()}, {"o", "flat"}, {"f", false}};
  const Json m = tenancy::merge_options(child, platform);
  EXPECT_EQ(m["s"], "");
  EXPECT_TRUE(m.contains("n"));
  EXPECT_TRUE(m["n"].is_null());
  EXPECT_EQ(m["a"], Json::array());
  EXPECT_EQ(m["o"], "flat");  // a non-object replaces an object whole
  EXPECT_EQ(m["f"], false);
  // An empty object is still an object: it merges (and so takes the platform's keys).
  EXPECT_EQ(tenancy::merge_options({{"o", Json::object()}}, platform)["o"], (Json{{"k", 1}}));
}

TEST(MergeConnection, ChildKeysWinSecretsTravelAsLayers) {
  const Json platform = {{"id", "con_p"},
                         {"name", "google-oauth2"},
                         {"strategy", "google-oauth2"},
                         {"display_name", "Google"},
                         {"show_as_button", true},
                         {"enabled_clients", {"platform-client"}},
                         {"realms", {"google-oauth2"}},
                         {"options", {{"client_id", "pid"}, {"scope", "openid email"}}},
                         {"_secrets", "SEALED-P"}};
  const Json child = {{"id", "con_c"},
                      {"name", "acme-google"},
                      {"strategy", "google-oauth2"},
                      {"enabled_clients", Json::array()},
                      {"options", {{"scope", "openid"}}},
                      {"_secrets", "SEALED-C"}};
  const Json m = tenancy::merge_connection(child, {"SEALED-C", "acme\ncon_c"}, platform,
                                           {"SEALED-P", "control_plane\ncon_p"});
  EXPECT_EQ(m["id"], "con_c");
  EXPECT_EQ(m["name"], "acme-google");
  EXPECT_EQ(m["display_name"], "Google");  // missing top-level key: from the platform
  EXPECT_EQ(m["show_as_button"], true);
  EXPECT_EQ(m["enabled_clients"], Json::array());
  EXPECT_FALSE(m.contains("realms"));  // describes the platform's record, never inherited
  EXPECT_EQ(m["options"], (Json{{"client_id", "pid"}, {"scope", "openid"}}));
  EXPECT_FALSE(m.contains("_secrets"));
  EXPECT_EQ(m["_secret_layers"], Json::parse(R"([{"sealed":"SEALED-C","aad":"acme\ncon_c"},
                            {"sealed":"SEALED-P","aad":"control_plane\ncon_p"}])"));

  const Json whole = tenancy::inherited_connection(platform, {"SEALED-P", "control_plane\ncon_p"});
  EXPECT_EQ(whole["name"], "google-oauth2");
  EXPECT_EQ(whole["enabled_clients"], Json::array());  // platform client ids mean nothing here
  EXPECT_EQ(whole["_secret_layers"].size(), 1u);
  EXPECT_FALSE(whole.contains("_secrets"));
  EXPECT_EQ(tenancy::connection_aad("acme", "con_1"), "acme\ncon_1");
}

TEST(MergeConnection, DatabaseAndPasswordlessAreNotInheritedWhole) {
  EXPECT_FALSE(tenancy::inheritable_as_a_whole("auth0"));
  EXPECT_FALSE(tenancy::inheritable_as_a_whole("email"));
  EXPECT_FALSE(tenancy::inheritable_as_a_whole("sms"));
  EXPECT_TRUE(tenancy::inheritable_as_a_whole("google-oauth2"));
  EXPECT_TRUE(tenancy::inheritable_as_a_whole("oidc"));
}

TEST(MergeSettings, MissingFromPlatformPlatformOnlyNever) {
  const Json platform = {{"default_audience", "https://api.p"},
                         {"brute_force_protection", {{"max_attempts", 3}, {"shields", {"a"}}}},
                         {"self_service_tenants", false},
                         {"constraints", {{"password_min_length", {{"min", 10}}}}},
                         {"support_email", "help@p"}};
  const Json child = {{"brute_force_protection", {{"max_attempts", 5}}},
                      {"support_email", nullptr}};
  const Json m = tenancy::merge_settings(child, platform);
  EXPECT_EQ(m["default_audience"], "https://api.p");
  EXPECT_EQ(m["brute_force_protection"], (Json{{"max_attempts", 5}, {"shields", {"a"}}}));
  EXPECT_TRUE(m["support_email"].is_null());
  EXPECT_FALSE(m.contains("self_service_tenants"));
  EXPECT_FALSE(m.contains("constraints"));
}

// ---- constraints --------------------------------------------------------------------------------

const Json kConstraints = {{"password_min_length", {{"min", 10}}},
                           {"access_token_lifetime", {{"max", 3600}}},
                           {"refresh_token_lifetime", {{"max", 86400}}},
                           {"brute_force_protection.max_attempts", {{"max", 5}}}};

ks::http::HttpError error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ks::http::HttpError& e) {
    return e;
  }
  return {0, "", ""};
}

TEST(Constraints, WellFormedOnly) {
  EXPECT_NO_THROW(tenancy::validate_constraints(kConstraints));
  EXPECT_NO_THROW(tenancy::validate_constraints(nullptr));
  for (const Json& bad :
       {Json("x"), Json{{"mfa_required", {{"min", true}}}}, Json{{"password_min_length", 10}},
        Json{{"password_min_length", {{"least", 10}}}},
        Json{{"password_min_length", {{"min", "10"}}}}, Json{{"password_min_length", {{"min", 0}}}},
        Json{{"access_token_lifetime", {{"min", 100}, {"max", 50}}}}}) {
    auto e = error_of([&] { tenancy::validate_constraints(bad); });
    EXPECT_EQ(e.status, 400) << bad.dump();
    EXPECT_EQ(e.error_code, "invalid_body") << bad.dump();
  }
}

TEST(Constraints, FloorsAndCeilingsRefuseWithTheSettingAndBound) {
  struct Case {
    Json patch;
    std::string setting, bound;
  };
  for (const auto& c :
       {Case{{{"password_min_length", 9}}, "password_min_length", "minimum of 10"},
        Case{{{"access_token_lifetime", 3601}}, "access_token_lifetime", "maximum of 3600"},
        Case{{{"refresh_token_lifetime", 86401}}, "refresh_token_lifetime", "maximum of 86400"},
        Case{{{"brute_force_protection", {{"max_attempts", 6}}}},
             "brute_force_protection.max_attempts",
             "maximum of 5"}}) {
    auto e = error_of([&] { tenancy::check_against_constraints(c.patch, kConstraints); });
    EXPECT_EQ(e.status, 422) << c.patch.dump();
    EXPECT_EQ(e.error_code, "constraint-violation");
    EXPECT_NE(e.message.find(c.setting), std::string::npos) << e.message;
    EXPECT_NE(e.message.find(c.bound), std::string::npos) << e.message;
  }
  // At the bound, removals and unconstrained settings pass.
  EXPECT_NO_THROW(
      tenancy::check_against_constraints({{"password_min_length", 10},
                                          {"access_token_lifetime", 3600},
                                          {"refresh_token_lifetime", nullptr},
                                          {"brute_force_protection", {{"max_attempts", 5}}},
                                          {"default_audience", "x"}},
                                         kConstraints));
  EXPECT_NO_THROW(tenancy::check_against_constraints({{"access_token_lifetime", 99999}}, {}));
  // Wrong types are bad input, not violations.
  for (const Json& bad : {Json{{"password_min_length", "12"}}, Json{{"access_token_lifetime", 0}},
                          Json{{"brute_force_protection", 3}}}) {
    EXPECT_EQ(error_of([&] { tenancy::check_against_constraints(bad, kConstraints); }).status, 400)
        << bad.dump();
  }
}

TEST(Constraints, ClampedAtRead) {
  // Stored values outside the bounds (the platform tightened them later) are clamped; absent
  // settings take the bound when their default lies outside it.
  Json s = tenancy::clamp_settings({{"password_min_length", 8}, {"access_token_lifetime", 7200}},
                                   kConstraints);
  EXPECT_EQ(s["password_min_length"], 10);
  EXPECT_EQ(s["access_token_lifetime"], 3600);
  EXPECT_EQ(s["refresh_token_lifetime"], 86400);              // unbounded → the ceiling
  EXPECT_EQ(s["brute_force_protection"]["max_attempts"], 5);  // default 10 → 5
  s = tenancy::clamp_settings({{"password_min_length", 12}, {"access_token_lifetime", 60}},
                              kConstraints);
  EXPECT_EQ(s["password_min_length"], 12);
  EXPECT_EQ(s["access_token_lifetime"], 60);
  // Without constraints nothing is added.
  EXPECT_EQ(tenancy::clamp_settings({{"a", 1}}, Json::object()), (Json{{"a", 1}}));
  // Within bounds, defaults stay implicit.
  EXPECT_FALSE(tenancy::clamp_settings(Json::object(),
                                       {{"brute_force_protection.max_attempts", {{"max", 50}}}})
                   .contains("brute_force_protection"));
}

TEST(Constraints, EffectiveSettingsOfChildAndControlPlane) {
  const Json platform = {{"password_min_length", 12}, {"constraints", kConstraints}};
  const Json child = {{"access_token_lifetime", 7200}};
  const Json eff = tenancy::effective_settings_of(child, platform, false);
  EXPECT_EQ(eff["password_min_length"], 12);
  EXPECT_EQ(eff["access_token_lifetime"], 3600);
  EXPECT_FALSE(eff.contains("constraints"));
  const Json cp = tenancy::effective_settings_of(platform, Json::object(), true);
  EXPECT_EQ(cp["password_min_length"], 12);
  EXPECT_EQ(cp["access_token_lifetime"], 3600);
}

// ---- through the engine
// ---------------------------------------------------------------------------

constexpr const char* kPlatformClient = "platform-app";
constexpr const char* kChildCallback = "https://acme.test/cb";
constexpr const char* kPortalCallback = "https://portal.test/cb";
constexpr const char* kChildFedCallback = "http://id.test/t/acme/login/callback";

// Canned upstream answers by "METHOD url" (query ignored); records every request.
class CannedHttp final : public ks::net::HttpClient {
 public:
  ks::net::HttpResult fetch(std::string_view method, const std::string& url,
                            const std::vector<ks::http::Header>&,
                            const std::string& body) override {
    const std::string key = std::string(method) + " " + url.substr(0, url.find('?'));
    seen.push_back({key, body});
    auto c = canned.find(key);
    if (c == canned.end()) return {0, "could not resolve host", {}};
    return c->second;
  }
  std::map<std::string, ks::net::HttpResult> canned;
  std::vector<std::pair<std::string, std::string>> seen;
};

ks::net::HttpResult json_result(const Json& j) {
  return {200, j.dump(), {{"content-type", "application/json"}}};
}

class Fallback : public ks::test::EngineTest {
 public:
  void SetUp() override {
    EngineTest::SetUp();
    http_ = std::make_shared<CannedHttp>();
    open_engine([&](ks::Config& cfg, ks::Engine::Deps& deps) {
      cfg.control_plane_client_id = kPlatformClient;
      deps.http_client = http_;
    });

    ASSERT_EQ(manage("control_plane", "POST", "/clients",
                     {{"client_id", kPlatformClient},
                      {"name", "Platform portal"},
                      {"app_type", "spa"},
                      {"callbacks", {kPortalCallback, "https://shared.test/cb"}},
                      {"web_origins", {"https://portal.test"}},
                      {"allowed_origins", {"https://widgets.portal.test"}},
                      {"allowed_logout_urls", {"https://portal.test/bye"}}})
                  .status,
              201);
    ASSERT_EQ(manage("control_plane", "POST", "/tenants", {{"id", "acme"}}).status, 201);
    auto c = manage("acme", "POST", "/clients",
                    {{"client_id", "acme-app"},
                     {"client_secret", "acme-app-secret"},
                     {"name", "Acme app"},
                     {"app_type", "regular_web"},
                     {"callbacks", {kChildCallback, "https://shared.test/cb", "https://x.test/cb"}},
                     {"web_origins", {"https://acme.test"}},
                     {"allowed_logout_urls", {"https://acme.test/bye"}},
                     {"grant_types", {"authorization_code", "refresh_token", "password"}}});
    ASSERT_EQ(c.status, 201) << c.body;
  }

  Response manage(const std::string& tenant, const std::string& method, const std::string& path,
                  const Json& body = nullptr) {
    const auto q = path.find('?');
    if (q == std::string::npos) return engine_->manage(tenant, method, path, body);
    return engine_->manage(tenant, method, path.substr(0, q), body, path.substr(q + 1));
  }

  static std::string verifier() { return std::string(43, 'v'); }

  std::string authorize_url(const std::string& redirect, const std::string& extra = "",
                            const std::string& tenant = "acme",
                            const std::string& client = "acme-app") {
    return "/t/" + tenant + "/authorize?response_type=code&client_id=" + client +
           "&redirect_uri=" + ks::http::url_encode(redirect) + "&scope=openid%20offline_access" +
           "&state=st4te&code_challenge=" +
           ks::crypto::base64url_encode(ks::crypto::sha256(verifier())) +
           "&code_challenge_method=S256" + extra;
  }

  // /authorize → the hosted page (login or signup); returns {state, csrf}.
  std::pair<std::string, std::string> open_page(const std::string& extra = "") {
    cookies_.clear();  // a new browser: no session answers for it
    auto a = send("GET", authorize_url(kChildCallback, extra));
    EXPECT_EQ(a.status, 302) << a.body;
    const std::string loc = header(a, "location");
    auto page = send("GET", loc.substr(std::string("http://id.test").size()));
    EXPECT_EQ(page.status, 200) << page.body;
    last_page_ = page.body;
    return {input_value(page.body, "state"), input_value(page.body, "_csrf")};
  }

  // Signs up on acme's hosted page: the status of the POST (302 on success).
  int signup(const std::string& email, const std::string& password) {
    auto [state, csrf] = open_page("&screen_hint=signup");
    auto r = send("POST", "/t/acme/u/signup",
                  "state=" + ks::http::url_encode(state) + "&_csrf=" + ks::http::url_encode(csrf) +
                      "&username=" + ks::http::url_encode(email) +
                      "&password=" + ks::http::url_encode(password));
    last_page_ = r.body;
    return r.status;
  }

  Json settings(const std::string& tenant) {
    return Json::parse(manage(tenant, "GET", "/tenants/settings").body);
  }

  Response patch_settings(const std::string& tenant, const Json& body) {
    return manage(tenant, "PATCH", "/tenants/settings", body);
  }

  Json connection_id(const std::string& tenant, const std::string& name) {
    auto r = manage(tenant, "GET", "/connections?name=" + name);
    return Json::parse(r.body)[0]["id"];
  }

  // A password-grant token response of acme for a fresh user.
  Json password_tokens() {
    static int n = 0;
    const std::string email = "pw" + std::to_string(++n) + "@example.com";
    EXPECT_EQ(manage("acme", "POST", "/users",
                     {{"email", email},
                      {"password", "a long enough password 1"},
                      {"connection", "Username-Password-Authentication"}})
                  .status,
              201);
    auto r = send("POST", "/t/acme/oauth/token",
                  "grant_type=password&client_id=acme-app&client_secret=acme-app-secret"
                  "&scope=openid%20offline_access&username=" +
                      ks::http::url_encode(email) + "&password=a%20long%20enough%20password%201");
    EXPECT_EQ(r.status, 200) << r.body;
    return Json::parse(r.body);
  }

  void add_platform_google(const Json& options = {{"client_id", "platform-g"},
                                                  {"client_secret", "platform-g-secret"}}) {
    auto r = manage("control_plane", "POST", "/connections",
                    {{"name", "google-oauth2"},
                     {"strategy", "google-oauth2"},
                     {"display_name", "Google"},
                     {"enabled_clients", {kPlatformClient}},
                     {"options", options}});
    ASSERT_EQ(r.status, 201) << r.body;
  }

  // /authorize?connection=… on acme → the upstream URL (or the error redirect).
  std::string start(const std::string& connection) {
    auto a = send("GET", authorize_url(kChildCallback, "&connection=" + connection));
    EXPECT_EQ(a.status, 302) << a.body;
    return header(a, "location");
  }

  // Completes a Google login started at `loc` with a canned upstream; returns the final redirect.
  std::string google_callback(const std::string& loc, const std::string& audience) {
    static const auto key = [] {
      auto rng = ks::crypto::seeded_random(7);
      return ks::crypto::SigningKey::generate(ks::crypto::Alg::ES256, *rng);
    }();
    auto rng = ks::crypto::seeded_random(8);
    http_->canned["GET https://www.googleapis.com/oauth2/v3/certs"] =
        json_result({{"keys", {key->public_jwk("g1")}}});
    Json claims = {{"iss", "https://accounts.google.com"},
                   {"aud", audience},
                   {"sub", "1101"},
                   {"email", "g@example.com"},
                   {"email_verified", true},
                   {"iat", clock_->now()},
                   {"exp", clock_->now() + 3600},
                   {"nonce", query_param(loc, "nonce")}};
    http_->canned["POST https://oauth2.googleapis.com/token"] = json_result(
        {{"access_token", "ya29.x"}, {"id_token", ks::crypto::jws_sign(*key, "g1", claims, *rng)}});
    auto cb = send("GET", "/t/acme/login/callback?code=g-code&state=" + query_param(loc, "state"));
    EXPECT_EQ(cb.status, 302) << cb.body;
    return header(cb, "location");
  }

  // The form the engine posted to Google's token endpoint.
  ks::http::Params token_request() {
    for (const auto& [key, body] : http_->seen)
      if (key == "POST https://oauth2.googleapis.com/token") return ks::http::Params::parse(body);
    ADD_FAILURE() << "no token request";
    return {};
  }

  std::shared_ptr<CannedHttp> http_;
  std::string last_page_;
};

// ---- clients ------------------------------------------------------------------------------------

TEST_F(Fallback, AuthorizeAcceptsTheControlPlaneClientsCallbacks) {
  for (const char* cb : {kChildCallback, kPortalCallback, "https://shared.test/cb"}) {
    auto a = send("GET", authorize_url(cb));
    EXPECT_EQ(a.status, 302) << cb << a.body;
    EXPECT_TRUE(header(a, "location").starts_with("http://id.test/t/acme/u/login?state=")) << cb;
  }
  EXPECT_EQ(send("GET", authorize_url("https://evil.test/cb")).status, 400);
  // The control plane's own other clients do not inherit from the fallback client.
  auto cp_app =
      manage("control_plane", "POST", "/clients",
             {{"client_id", "cp-other"}, {"name", "Other"}, {"callbacks", {"https://o/cb"}}});
  ASSERT_EQ(cp_app.status, 201);
  EXPECT_EQ(send("GET", "/authorize?response_type=code&client_id=cp-other&redirect_uri=" +
                            ks::http::url_encode(kPortalCallback))
                .status,
            400);
  // The Management API of the child shows only its own lists.
  auto own = Json::parse(manage("acme", "GET", "/clients/acme-app").body);
  EXPECT_EQ(own["callbacks"],
            (Json{kChildCallback, "https://shared.test/cb", "https://x.test/cb"}));
  EXPECT_EQ(own["web_origins"], Json{"https://acme.test"});
}

TEST_F(Fallback, WebMessageOriginMayBeTheControlPlanes) {
  EXPECT_EQ(send("GET", authorize_url(kPortalCallback, "&response_mode=web_message")).status, 302);
  EXPECT_EQ(send("GET", authorize_url(kChildCallback, "&response_mode=web_message")).status, 302);
  // A callback of the client whose origin neither lists as a web origin.
  EXPECT_EQ(send("GET", authorize_url("https://x.test/cb", "&response_mode=web_message")).status,
            400);
}

TEST_F(Fallback, LogoutUrlsIncludeTheControlPlanes) {
  auto r = send("GET", "/t/acme/v2/logout?client_id=acme-app&returnTo=" +
                           ks::http::url_encode("https://portal.test/bye"));
  EXPECT_EQ(r.status, 302);
  EXPECT_EQ(header(r, "location"), "https://portal.test/bye");
  EXPECT_EQ(send("GET", "/t/acme/v2/logout?client_id=acme-app&returnTo=" +
                            ks::http::url_encode("https://acme.test/bye"))
                .status,
            302);
  EXPECT_EQ(send("GET", "/t/acme/v2/logout?client_id=acme-app&returnTo=" +
                            ks::http::url_encode("https://evil.test/bye"))
                .status,
            400);
  r = send("GET", "/t/acme/oidc/logout?client_id=acme-app&post_logout_redirect_uri=" +
                      ks::http::url_encode("https://portal.test/bye"));
  EXPECT_EQ(r.status, 302);
}

TEST_F(Fallback, CorsOriginsIncludeTheControlPlanes) {
  auto token_with_origin = [&](const std::string& origin) {
    ks::http::Request r;
    r.method = "POST";
    r.set_target("/t/acme/oauth/token");
    r.add_header("host", "id.test");
    r.add_header("origin", origin);
    r.add_header("content-type", "application/x-www-form-urlencoded");
    r.body = "grant_type=refresh_token&client_id=acme-app&refresh_token=nope";
    return engine_->handle(r);
  };
  EXPECT_EQ(header(token_with_origin("https://portal.test"), "access-control-allow-origin"),
            "https://portal.test");
  EXPECT_EQ(header(token_with_origin("https://widgets.portal.test"), "access-control-allow-origin"),
            "https://widgets.portal.test");
  EXPECT_EQ(header(token_with_origin("https://acme.test"), "access-control-allow-origin"),
            "https://acme.test");
  EXPECT_EQ(header(token_with_origin("https://evil.test"), "access-control-allow-origin"), "");
  // A preflight names no client: the fallback client's origins vouch too.
  ks::http::Request pre;
  pre.method = "OPTIONS";
  pre.set_target("/t/acme/oauth/token");
  pre.add_header("host", "id.test");
  pre.add_header("origin", "https://widgets.portal.test");
  EXPECT_EQ(header(engine_->handle(pre), "access-control-allow-origin"),
            "https://widgets.portal.test");
}

TEST_F(Fallback, NoFallbackClientWhenItDoesNotExist) {
  ASSERT_EQ(manage("control_plane", "DELETE", std::string("/clients/") + kPlatformClient).status,
            204);
  EXPECT_EQ(send("GET", authorize_url(kPortalCallback)).status, 400);
  EXPECT_EQ(send("GET", authorize_url(kChildCallback)).status, 302);
}

// ---- connections --------------------------------------------------------------------------------

TEST_F(Fallback, ChildLogsInThroughTheControlPlanesGoogleConnection) {
  add_platform_google();
  // The child has no google-oauth2 connection of its own.
  EXPECT_EQ(Json::parse(manage("acme", "GET", "/connections?strategy=google-oauth2").body),
            Json::array());
  const std::string loc = start("google-oauth2");
  ASSERT_TRUE(loc.starts_with("https://accounts.google.com/o/oauth2/v2/auth?")) << loc;
  EXPECT_EQ(query_param(loc, "client_id"), "platform-g");
  EXPECT_EQ(query_param(loc, "redirect_uri"), kChildFedCallback);
  EXPECT_EQ(query_param(loc, "scope"), "openid profile email");

  const std::string back = google_callback(loc, "platform-g");
  EXPECT_TRUE(back.starts_with(std::string(kChildCallback) + "?code=")) << back;
  // The control plane's secret, opened with the control plane's associated data.
  EXPECT_EQ(token_request().get_or("client_secret", ""), "platform-g-secret");
  EXPECT_EQ(token_request().get_or("client_id", ""), "platform-g");
  // The user lives in the child, and only there.
  auto u = manage("acme", "GET", "/users/google-oauth2%7C1101");
  ASSERT_EQ(u.status, 200) << u.body;
  EXPECT_EQ(Json::parse(u.body)["identities"][0]["connection"], "google-oauth2");
  EXPECT_EQ(manage("control_plane", "GET", "/users/google-oauth2%7C1101").status, 404);
}

TEST_F(Fallback, LoginPageShowsTheInheritedConnection) {
  add_platform_google();
  open_page();
  EXPECT_NE(last_page_.find("Continue with Google"), std::string::npos) << last_page_;
  EXPECT_NE(last_page_.find("connection=google-oauth2"), std::string::npos);
}

TEST_F(Fallback, ChildConnectionKeysWinMissingOnesComeFromTheControlPlane) {
  add_platform_google({{"client_id", "platform-g"},
                       {"client_secret", "platform-g-secret"},
                       {"scope", {"openid", "email", "profile"}}});
  // The child's own connection of the strategy, with only a narrower scope.
  ASSERT_EQ(manage("acme", "POST", "/connections",
                   {{"name", "acme-google"},
                    {"strategy", "google-oauth2"},
                    {"options", {{"scope", {"openid"}}}}})
                .status,
            201);
  const std::string loc = start("acme-google");
  EXPECT_EQ(query_param(loc, "client_id"), "platform-g");
  EXPECT_EQ(query_param(loc, "scope"), "openid");  // arrays replace
  EXPECT_TRUE(
      google_callback(loc, "platform-g").starts_with(std::string(kChildCallback) + "?code="));
  EXPECT_EQ(token_request().get_or("client_secret", ""), "platform-g-secret");
  // With its own connection of the strategy, the control plane's is not reachable by name.
  const std::string cp = start("google-oauth2");
  EXPECT_TRUE(cp.starts_with(std::string(kChildCallback) + "?error=invalid_request")) << cp;
}

TEST_F(Fallback, ChildSecretAndClientIdWin) {
  add_platform_google();
  ASSERT_EQ(manage("acme", "POST", "/connections",
                   {{"name", "acme-google"},
                    {"strategy", "google-oauth2"},
                    {"options", {{"client_id", "acme-g"}, {"client_secret", "acme-g-secret"}}}})
                .status,
            201);
  const std::string loc = start("acme-google");
  EXPECT_EQ(query_param(loc, "client_id"), "acme-g");
  ASSERT_TRUE(google_callback(loc, "acme-g").starts_with(std::string(kChildCallback) + "?code="));
  EXPECT_EQ(token_request().get_or("client_secret", ""), "acme-g-secret");
}

TEST_F(Fallback, APresentEmptyValueDoesNotFallBack) {
  add_platform_google({{"client_id", "platform-g"},
                       {"client_secret", "platform-g-secret"},
                       {"scope", "openid email"}});
  // client_secret "" and scope null are present: no fallback for either.
  ASSERT_EQ(manage("acme", "POST", "/connections",
                   {{"name", "acme-google"},
                    {"strategy", "google-oauth2"},
                    {"options", {{"client_secret", ""}, {"scope", nullptr}}}})
                .status,
            201);
  const std::string loc = start("acme-google");
  EXPECT_EQ(query_param(loc, "client_id"), "platform-g");
  EXPECT_EQ(query_param(loc, "scope"), "openid profile email");  // the strategy default
  ASSERT_TRUE(
      google_callback(loc, "platform-g").starts_with(std::string(kChildCallback) + "?code="));
  EXPECT_FALSE(token_request().has("client_secret"));
  // client_id "" is present too: the connection has no client id, whatever the platform says.
  auto id = connection_id("acme", "acme-google").get<std::string>();
  ASSERT_EQ(
      manage("acme", "PATCH", "/connections/" + id, {{"options", {{"client_id", ""}}}}).status,
      200);
  const std::string err = start("acme-google");
  EXPECT_TRUE(err.starts_with(std::string(kChildCallback) + "?error=server_error")) << err;
  EXPECT_EQ(query_param(err, "error_description"), "The connection has no client_id");
}

TEST_F(Fallback, OnlyTheFirstControlPlaneConnectionOfAStrategyIsInherited) {
  add_platform_google();
  ASSERT_EQ(manage("control_plane", "POST", "/connections",
                   {{"name", "google-second"},
                    {"strategy", "google-oauth2"},
                    {"options", {{"client_id", "second"}}}})
                .status,
            201);
  ASSERT_EQ(manage("control_plane", "POST", "/connections",
                   {{"name", "cp-database"}, {"strategy", "auth0"}})
                .status,
            201);
  EXPECT_TRUE(start("google-second").starts_with(std::string(kChildCallback) + "?error="));
  EXPECT_EQ(query_param(start("google-oauth2"), "client_id"), "platform-g");
  // A database connection keeps its users per tenant: never inherited as a whole.
  EXPECT_TRUE(start("cp-database").starts_with(std::string(kChildCallback) + "?error="));
}

TEST_F(Fallback, DatabaseOptionsMergeRecursively) {
  // The platform's database connection sets a complexity minimum; the child's sets only the
  // policy name and an empty complexity object (objects merge: the minimum still comes through).
  auto cp_db = connection_id("control_plane", "Username-Password-Authentication");
  ASSERT_EQ(manage("control_plane", "PATCH", "/connections/" + cp_db.get<std::string>(),
                   {{"options", {{"password_complexity_options", {{"min_length", 12}}}}}})
                .status,
            200);
  auto db = connection_id("acme", "Username-Password-Authentication").get<std::string>();
  ASSERT_EQ(
      manage("acme", "PATCH", "/connections/" + db,
             {{"options",
               {{"password_policy", "none"}, {"password_complexity_options", Json::object()}}}})
          .status,
      200);
  EXPECT_EQ(signup("a@example.com", "elevenchars"), 400);
  EXPECT_NE(last_page_.find("at least 12 characters"), std::string::npos);
  EXPECT_EQ(signup("a@example.com", "twelve chars"), 302);
  // The child's own value wins over the platform's.
  ASSERT_EQ(manage("acme", "PATCH", "/connections/" + db,
                   {{"options", {{"password_complexity_options", {{"min_length", 4}}}}}})
                .status,
            200);
  EXPECT_EQ(signup("b@example.com", "four"), 302);
}

TEST_F(Fallback, SecretsNeverAppearInManagementResponses) {
  add_platform_google();
  ASSERT_EQ(manage("acme", "POST", "/connections",
                   {{"name", "acme-github"},
                    {"strategy", "github"},
                    {"options", {{"client_id", "gh"}, {"client_secret", "acme-gh-secret"}}}})
                .status,
            201);
  const std::string loc = start("google-oauth2");
  ASSERT_TRUE(google_callback(loc, "platform-g").starts_with(std::string(kChildCallback)));
  for (const auto& [tenant, path] :
       std::vector<std::pair<std::string, std::string>>{{"control_plane", "/connections"},
                                                        {"acme", "/connections"},
                                                        {"acme", "/connections?strategy=github"},
                                                        {"acme", "/clients"},
                                                        {"control_plane", "/clients"},
                                                        {"acme", "/tenants/settings"},
                                                        {"control_plane", "/tenants"}}) {
    auto r = manage(tenant, "GET", path);
    ASSERT_EQ(r.status, 200) << tenant << path;
    for (const char* secret :
         {"platform-g-secret", "acme-gh-secret", "acme-app-secret", "\"_secret"})
      EXPECT_EQ(r.body.find(secret), std::string::npos) << tenant << path << ": " << secret;
  }
  // The child's list shows only its own connections, never the inherited one.
  auto cons = Json::parse(manage("acme", "GET", "/connections").body);
  for (const auto& c : cons) EXPECT_NE(c["name"], "google-oauth2");
  EXPECT_EQ(cons.size(), 2u);
}

// ---- settings -----------------------------------------------------------------------------------

TEST_F(Fallback, MissingSettingsComeFromTheControlPlane) {
  ASSERT_EQ(patch_settings("control_plane", {{"password_min_length", 14}}).status, 200);
  EXPECT_EQ(signup("a@example.com", "thirteen char"), 400);
  EXPECT_NE(last_page_.find("at least 14 characters"), std::string::npos) << last_page_;
  EXPECT_FALSE(settings("acme").contains("password_min_length"));  // own data only
  ASSERT_EQ(patch_settings("acme", {{"password_min_length", 9}}).status, 200);
  EXPECT_EQ(signup("a@example.com", "nine char"), 302);
}

TEST_F(Fallback, BruteForceLimitFallsBack) {
  ASSERT_EQ(
      patch_settings("control_plane", {{"brute_force_protection", {{"max_attempts", 2}}}}).status,
      200);
  ASSERT_EQ(manage("acme", "POST", "/users",
                   {{"email", "bob@example.com"},
                    {"password", "bob's good password"},
                    {"connection", "Username-Password-Authentication"}})
                .status,
            201);
  auto attempt = [&](const std::string& pw) {
    auto [state, csrf] = open_page();
    return send("POST", "/t/acme/u/login",
                "state=" + ks::http::url_encode(state) + "&_csrf=" + ks::http::url_encode(csrf) +
                    "&username=bob%40example.com&password=" + ks::http::url_encode(pw))
        .status;
  };
  EXPECT_EQ(attempt("wrong"), 401);
  EXPECT_EQ(attempt("wrong"), 401);
  EXPECT_EQ(attempt("bob's good password"), 429);
}

// ---- constraints through the Management API
// --------------------------------------------------------

void expect_violation(const Response& r, const std::string& setting, const std::string& bound) {
  EXPECT_EQ(r.status, 422) << r.body;
  Json b = Json::parse(r.body);
  EXPECT_EQ(b["statusCode"], 422);
  EXPECT_EQ(b["error"], "Unprocessable Entity");
  EXPECT_EQ(b["errorCode"], "constraint-violation");
  const std::string msg = b.value("message", "");
  EXPECT_NE(msg.find(setting), std::string::npos) << msg;
  EXPECT_NE(msg.find(bound), std::string::npos) << msg;
}

TEST_F(Fallback, EachConstraintIsRefusedEverywhereAndChangesNothing) {
  ASSERT_EQ(patch_settings("control_plane", {{"constraints", kConstraints}}).status, 200);
  ASSERT_EQ(patch_settings("acme", {{"password_min_length", 11}, {"support", "x"}}).status, 200);
  const Json before = settings("acme");
  const Json tenant_before = Json::parse(manage("control_plane", "GET", "/tenants/acme").body);
  struct Case {
    Json settings;
    std::string setting, bound;
  };
  for (const auto& c :
       {Case{{{"password_min_length", 8}}, "password_min_length", "10"},
        Case{{{"access_token_lifetime", 7200}}, "access_token_lifetime", "3600"},
        Case{{{"refresh_token_lifetime", 100000}}, "refresh_token_lifetime", "86400"},
        Case{{{"brute_force_protection", {{"max_attempts", 50}}}},
             "brute_force_protection.max_attempts",
             "5"}}) {
    Json with_other = c.settings;
    with_other["support"] = "changed";
    expect_violation(patch_settings("acme", with_other), c.setting, c.bound);
    expect_violation(manage("control_plane", "PATCH", "/tenants/acme",
                            {{"friendly_name", "Renamed"}, {"settings", with_other}}),
                     c.setting, c.bound);
    expect_violation(
        manage("control_plane", "POST", "/tenants", {{"id", "beta"}, {"settings", c.settings}}),
        c.setting, c.bound);
    EXPECT_EQ(manage("control_plane", "GET", "/tenants/beta").status, 404);
  }
  EXPECT_EQ(settings("acme"), before);
  EXPECT_EQ(Json::parse(manage("control_plane", "GET", "/tenants/acme").body), tenant_before);
  // Within the bounds: accepted.
  EXPECT_EQ(patch_settings("acme", {{"access_token_lifetime", 3600}}).status, 200);
  EXPECT_EQ(manage("control_plane", "POST", "/tenants",
                   {{"id", "beta"}, {"settings", {{"password_min_length", 10}}}})
                .status,
            201);
}

TEST_F(Fallback, OnlyTheControlPlaneSetsConstraints) {
  const Json c = {{"constraints", {{"password_min_length", {{"min", 6}}}}}};
  for (const auto& r :
       {patch_settings("acme", c),
        manage("control_plane", "PATCH", "/tenants/acme", {{"settings", c}}),
        manage("control_plane", "POST", "/tenants", {{"id", "beta"}, {"settings", c}})}) {
    EXPECT_EQ(r.status, 403) << r.body;
    EXPECT_NE(r.body.find("Only the control plane may set constraints"), std::string::npos);
  }
  EXPECT_FALSE(settings("acme").contains("constraints"));
  EXPECT_EQ(manage("control_plane", "GET", "/tenants/beta").status, 404);
  // Malformed constraints are bad input on the control plane too.
  EXPECT_EQ(patch_settings("control_plane", {{"constraints", {{"mfa_required", {{"min", true}}}}}})
                .status,
            400);
  EXPECT_EQ(patch_settings("control_plane", c).status, 200);
  EXPECT_EQ(settings("control_plane")["constraints"], c["constraints"]);
}

TEST_F(Fallback, TokenLifetimesAreClampedAtRead) {
  ASSERT_EQ(patch_settings("acme", {{"access_token_lifetime", 7200}}).status, 200);
  Json t = password_tokens();
  EXPECT_EQ(t["expires_in"], 7200);
  // The platform lowers the ceiling after the child chose its value: the ceiling wins at read.
  ASSERT_EQ(patch_settings("control_plane", {{"constraints",
                                              {{"access_token_lifetime", {{"max", 3600}}},
                                               {"refresh_token_lifetime", {{"max", 600}}}}}})
                .status,
            200);
  EXPECT_EQ(settings("acme")["access_token_lifetime"], 7200);  // stored value unchanged
  t = password_tokens();
  EXPECT_EQ(t["expires_in"], 3600);
  auto at = ks::crypto::jws_parse(t["access_token"].get<std::string>());
  ASSERT_TRUE(at);
  EXPECT_EQ(at->payload["exp"].get<int64_t>() - at->payload["iat"].get<int64_t>(), 3600);
  // The refresh token: no setting of its own, so the ceiling bounds the client's 30 days.
  ASSERT_TRUE(t.contains("refresh_token"));
  auto intro = send("POST", "/t/acme/oauth/introspect",
                    "client_id=acme-app&client_secret=acme-app-secret&token=" +
                        ks::http::url_encode(t["refresh_token"].get<std::string>()));
  ASSERT_EQ(intro.status, 200);
  EXPECT_EQ(Json::parse(intro.body)["exp"].get<int64_t>(), clock_->now() + 600);
  clock_->advance(601);
  auto refreshed = send("POST", "/t/acme/oauth/token",
                        "grant_type=refresh_token&client_id=acme-app&client_secret=acme-app-secret"
                        "&refresh_token=" +
                            ks::http::url_encode(t["refresh_token"].get<std::string>()));
  EXPECT_EQ(refreshed.status, 400);
}

TEST_F(Fallback, PasswordFloorIsClampedAtRead) {
  ASSERT_EQ(patch_settings("acme", {{"password_min_length", 6}}).status, 200);
  EXPECT_EQ(signup("a@example.com", "sixsix ok"), 302);
  ASSERT_EQ(
      patch_settings("control_plane", {{"constraints", {{"password_min_length", {{"min", 14}}}}}})
          .status,
      200);
  EXPECT_EQ(signup("b@example.com", "thirteen char"), 400);
  EXPECT_NE(last_page_.find("at least 14 characters"), std::string::npos);
  EXPECT_EQ(signup("b@example.com", "fourteen chars"), 302);
}

TEST_F(Fallback, ClientCredentialsLifetimeIsCapped) {
  ASSERT_EQ(manage("acme", "POST", "/clients",
                   {{"client_id", "acme-m2m"},
                    {"client_secret", "acme-m2m-secret"},
                    {"name", "m2m"},
                    {"app_type", "non_interactive"}})
                .status,
            201);
  ASSERT_EQ(manage("acme", "POST", "/client-grants",
                   {{"client_id", "acme-m2m"},
                    {"audience", "urn:keystead:management"},
                    {"scope", {"read:users"}}})
                .status,
            201);
  ASSERT_EQ(patch_settings("control_plane",
                           {{"constraints", {{"access_token_lifetime", {{"max", 900}}}}}})
                .status,
            200);
  auto r = send("POST", "/t/acme/oauth/token",
                "grant_type=client_credentials&client_id=acme-m2m&client_secret=acme-m2m-secret"
                "&audience=urn%3Akeystead%3Amanagement");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Json::parse(r.body)["expires_in"], 900);
}

}  // namespace
