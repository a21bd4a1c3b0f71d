// Federated connections end to end through Engine::handle. The downstream Keystead (id.test)
// reaches its upstream through a fake HttpClient that routes requests to a SECOND Engine (the
// upstream Keystead, up.test, tenant "idp") or answers canned responses (Google, GitHub); the
// "browser" follows redirects between the two engines and keeps cookies per host.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <regex>
#include <thread>

#include "core/engine_impl.h"
#include "core/net/http_client.h"
#include "core/oidc/oidc.h"
#include "tests/unit/support/engine_fixture.h"

using ks::Json;
using ks::http::Request;
using ks::http::Response;
using ks::net::HttpResult;

using ks::test::header;
using ks::test::input_value;
using ks::test::query_of;
using ks::test::query_param;

namespace {

constexpr const char* kAppCallback = "https://app.test/cb";
constexpr const char* kFedCallback = "http://id.test/login/callback";
constexpr const char* kUpIssuer = "http://up.test/t/idp/";
constexpr const char* kUpPassword = "upstream pass phrase";

// "http://host/path?q" → {host, "/path?q"}
std::pair<std::string, std::string> split_url(const std::string& url) {
  auto scheme = url.find("://");
  auto start = scheme == std::string::npos ? 0 : scheme + 3;
  auto slash = url.find('/', start);
  if (slash == std::string::npos) return {url.substr(start), "/"};
  return {url.substr(start, slash - start), url.substr(slash)};
}

// Outbound HTTP of the downstream engine: canned answers by "METHOD url" (query ignored),
// else the engine serving the URL's host. Records every request.
class FakeHttp final : public ks::net::HttpClient {
 public:
  struct Seen {
    std::string method, url, body;
    std::vector<ks::http::Header> headers;
    std::string header(std::string_view n) const {
      for (const auto& h : headers)
        if (h.name == n) return h.value;
      return {};
    }
  };

  HttpResult fetch(std::string_view method, const std::string& url,
                   const std::vector<ks::http::Header>& headers, const std::string& body) override {
    seen.push_back({std::string(method), url, body, headers});
    const std::string key = std::string(method) + " " + url.substr(0, url.find('?'));
    HttpResult out;
    if (auto c = canned.find(key); c != canned.end()) {
      out = c->second;
    } else {
      auto [host, target] = split_url(url);
      auto e = hosts.find(host);
      if (e == hosts.end()) return {0, "could not resolve host", {}};
      Request r;
      r.method = std::string(method);
      r.set_target(target);
      r.add_header("host", host);
      for (const auto& h : headers) r.add_header(h.name, h.value);
      r.body = body;
      r.remote_addr = "127.0.0.1";
      auto res = e->second->handle(r);
      out = {res.status, res.body, res.headers};
    }
    if (rewrite) rewrite(key, out);
    return out;
  }

  std::vector<std::string> requests() const {
    std::vector<std::string> out;
    for (const auto& s : seen) out.push_back(s.method + " " + s.url);
    return out;
  }

  std::map<std::string, ks::Engine*> hosts;
  std::map<std::string, HttpResult> canned;
  std::function<void(const std::string& key, HttpResult&)> rewrite;
  std::vector<Seen> seen;
};

HttpResult json_result(const Json& j, int status = 200) {
  return {status, j.dump(), {{"content-type", "application/json"}}};
}

class Federated : public ks::test::EngineTest {
 public:
  void SetUp() override {
    http_ = std::make_shared<FakeHttp>();
    clock_ = std::make_shared<ks::ManualClock>(1'800'000'000);
    engine_ = open_engine("http://id.test", dir_, 42);
    upstream_ = open_engine("http://up.test", updir_, 4242);
    http_->hosts["id.test"] = engine_.get();
    http_->hosts["up.test"] = upstream_.get();

    // The upstream Keystead: tenant "idp" with a confidential client and a user.
    ASSERT_EQ(upstream_->manage("control_plane", "POST", "/tenants", {{"id", "idp"}}).status, 201);
    auto c = upstream_->manage("idp", "POST", "/clients",
                               {{"name", "Downstream"},
                                {"app_type", "regular_web"},
                                {"callbacks", {kFedCallback}},
                                {"grant_types", {"authorization_code"}},
                                {"token_endpoint_auth_method", "client_secret_post"}});
    ASSERT_EQ(c.status, 201) << c.body;
    up_client_ = Json::parse(c.body);
    auto u = upstream_->manage("idp", "POST", "/users",
                               {{"email", "alice@example.com"},
                                {"password", kUpPassword},
                                {"connection", "Username-Password-Authentication"},
                                {"email_verified", true},
                                {"name", "Alice Upstream"},
                                {"given_name", "Alice"}});
    ASSERT_EQ(u.status, 201) << u.body;
    up_user_ = Json::parse(u.body)["user_id"];

    // The downstream: an SPA and the oidc connection to the upstream.
    admin_ = admin();
    auto app = call("POST", "/api/v2/clients",
                    {{"name", "SPA"},
                     {"app_type", "spa"},
                     {"callbacks", {kAppCallback}},
                     {"web_origins", {"https://app.test"}},
                     {"grant_types", {"authorization_code", "refresh_token"}}},
                    admin_);
    ASSERT_EQ(app.status, 201) << app.body;
    client_id_ = Json::parse(app.body)["client_id"];
    auto con = call("POST", "/api/v2/connections",
                    {{"name", "upstream"},
                     {"strategy", "oidc"},
                     {"display_name", "Upstream IdP"},
                     {"options",
                      {{"issuer", kUpIssuer},
                       {"client_id", up_client_["client_id"]},
                       {"client_secret", up_client_["client_secret"]}}}},
                    admin_);
    ASSERT_EQ(con.status, 201) << con.body;
    EXPECT_FALSE(Json::parse(con.body)["options"].contains("client_secret"));
  }

  void TearDown() override {
    upstream_.reset();
    (void)std::system(("rm -rf " + updir_).c_str());
    EngineTest::TearDown();
  }

  std::unique_ptr<ks::Engine> open_engine(const std::string& url, std::string& dir, uint64_t seed) {
    char tmpl[] = "/tmp/ks-fed-XXXXXX";
    dir = mkdtemp(tmpl);
    ks::Config cfg;
    cfg.data_dir = dir;
    cfg.public_url = url;
    cfg.master_key = std::string(64, seed == 42 ? 'a' : 'b');
    cfg.bootstrap_client_id = ks::test::kBootId;
    cfg.bootstrap_client_secret = ks::test::kBootSecret;
    ks::Engine::Deps deps;
    deps.store = ks::store::open_sqlite(":memory:");
    deps.clock = clock_;
    deps.random = ks::crypto::seeded_random(seed);
    deps.http_client = http_;
    return ks::Engine::open(cfg, std::move(deps));
  }

  // The browser: absolute URLs, cookies per host.
  Response go(const std::string& method, const std::string& url, const std::string& body = "") {
    auto [host, target] = split_url(url);
    Request r;
    r.method = method;
    r.set_target(target);
    r.add_header("host", host);
    r.remote_addr = "10.0.0.1";
    std::string cookie;
    for (const auto& [k, v] : jar_[host]) cookie += (cookie.empty() ? "" : "; ") + k + "=" + v;
    if (!cookie.empty()) r.add_header("cookie", cookie);
    if (!body.empty()) {
      r.body = body;
      r.add_header("content-type", "application/x-www-form-urlencoded");
    }
    auto res = http_->hosts.at(host)->handle(r);
    for (const auto& h : res.headers) {
      if (h.name != "set-cookie") continue;
      auto eq = h.value.find('='), semi = h.value.find(';');
      std::string k = h.value.substr(0, eq), v = h.value.substr(eq + 1, semi - eq - 1);
      if (v.empty() || h.value.find("Max-Age=0") != std::string::npos)
        jar_[host].erase(k);
      else
        jar_[host][k] = v;
    }
    return res;
  }

  static std::string verifier() { return std::string(43, 'v'); }

  std::string authorize_url(const std::string& extra) {
    return "http://id.test/authorize?response_type=code&client_id=" + client_id_ +
           "&redirect_uri=" + ks::http::url_encode(kAppCallback) +
           "&scope=openid%20profile%20email&state=st4te&nonce=n0nce&code_challenge=" +
           ks::crypto::base64url_encode(ks::crypto::sha256(verifier())) +
           "&code_challenge_method=S256" + extra;
  }

  // Downstream /authorize?connection=upstream → the upstream's authorize URL.
  std::string start(const std::string& connection = "upstream") {
    auto a = go("GET", authorize_url("&connection=" + connection));
    EXPECT_EQ(a.status, 302) << a.body;
    return header(a, "location");
  }

  // Follows the upstream's authorize URL through its login form (unless its session answers):
  // returns the upstream's redirect back to the downstream.
  std::string upstream_login(const std::string& upstream_authorize) {
    auto a = go("GET", upstream_authorize);
    EXPECT_EQ(a.status, 302) << a.body;
    std::string loc = header(a, "location");
    if (loc.starts_with(kFedCallback)) return loc;
    EXPECT_TRUE(loc.starts_with("http://up.test/t/idp/u/login?state=")) << loc;
    auto page = go("GET", loc);
    EXPECT_EQ(page.status, 200);
    auto post =
        go("POST", "http://up.test/t/idp/u/login",
           "state=" + ks::http::url_encode(input_value(page.body, "state")) +
               "&_csrf=" + ks::http::url_encode(input_value(page.body, "_csrf")) +
               "&username=alice%40example.com&password=" + ks::http::url_encode(kUpPassword));
    EXPECT_EQ(post.status, 302) << post.body;
    return header(post, "location");
  }

  // The whole federated login: returns where the downstream finally sends the browser.
  std::string federated_login() {
    const std::string back = upstream_login(start());
    EXPECT_TRUE(back.starts_with(std::string(kFedCallback) + "?")) << back;
    auto cb = go("GET", back);
    EXPECT_EQ(cb.status, 302) << cb.body;
    return header(cb, "location");
  }

  Json exchange(const std::string& code) {
    auto r = go("POST", "http://id.test/oauth/token",
                "grant_type=authorization_code&client_id=" + client_id_ +
                    "&code=" + ks::http::url_encode(code) + "&redirect_uri=" +
                    ks::http::url_encode(kAppCallback) + "&code_verifier=" + verifier());
    EXPECT_EQ(r.status, 200) << r.body;
    return Json::parse(r.body);
  }

  Response user(const std::string& id) {
    return call("GET", "/api/v2/users/" + ks::http::url_encode(id), nullptr, admin_);
  }

  Json logs() { return Json::parse(call("GET", "/api/v2/logs", nullptr, admin_).body); }

  std::shared_ptr<FakeHttp> http_;
  std::unique_ptr<ks::Engine> upstream_;
  std::string updir_;
  std::map<std::string, std::map<std::string, std::string>> jar_;
  std::string admin_;
  std::string client_id_;
  Json up_client_;
  std::string up_user_;
};

// ---- the oidc strategy against an upstream Keystead ------------------------------------------

TEST_F(Federated, AuthorizeRedirectsToTheUpstream) {
  auto a = go("GET", authorize_url("&connection=upstream"));
  ASSERT_EQ(a.status, 302);
  const std::string loc = header(a, "location");
  ASSERT_TRUE(loc.starts_with("http://up.test/t/idp/authorize?")) << loc;
  auto q = query_of(loc);
  EXPECT_EQ(q.get_or("response_type", ""), "code");
  EXPECT_EQ(q.get_or("client_id", ""), up_client_["client_id"]);
  EXPECT_EQ(q.get_or("redirect_uri", ""), kFedCallback);
  EXPECT_EQ(q.get_or("scope", ""), "openid profile email");
  EXPECT_EQ(q.get_or("state", "").size(), 32u);
  EXPECT_EQ(q.get_or("nonce", "").size(), 32u);
  EXPECT_EQ(q.get_or("code_challenge", "").size(), 43u);
  EXPECT_EQ(q.get_or("code_challenge_method", ""), "S256");
  // Only discovery was needed, and the login is bound to this browser by a cookie.
  EXPECT_EQ(http_->requests(),
            std::vector<std::string>{"GET http://up.test/t/idp/.well-known/openid-configuration"});
  const std::string cookie = header(a, "set-cookie");
  EXPECT_TRUE(cookie.starts_with("ks_fed_")) << cookie;
  EXPECT_NE(cookie.find("; Path=/login/callback; HttpOnly; Max-Age=1800; SameSite=Lax"),
            std::string::npos)
      << cookie;
}

TEST_F(Federated, LoginCreatesTheUserAndIssuesTokens) {
  const std::string cb = federated_login();
  ASSERT_TRUE(cb.starts_with(std::string(kAppCallback) + "?code=")) << cb;
  EXPECT_EQ(query_param(cb, "state"), "st4te");
  // Discovery, the code exchange, the JWKS: nothing else.
  EXPECT_EQ(http_->requests(),
            (std::vector<std::string>{"GET http://up.test/t/idp/.well-known/openid-configuration",
                                      "POST http://up.test/t/idp/oauth/token",
                                      "GET http://up.test/t/idp/.well-known/jwks.json"}));
  // client_secret_post with the unsealed secret, and the upstream PKCE verifier.
  auto form = ks::http::Params::parse(http_->seen[1].body);
  EXPECT_EQ(form.get_or("client_secret", ""), up_client_["client_secret"]);
  EXPECT_EQ(form.get_or("redirect_uri", ""), kFedCallback);
  EXPECT_EQ(form.get_or("code_verifier", "").size(), 43u);

  const std::string expected_id = "oidc|" + up_user_;
  auto tokens = exchange(query_param(cb, "code"));
  auto id = ks::crypto::jws_parse(tokens["id_token"].get<std::string>());
  ASSERT_TRUE(id);
  EXPECT_EQ(id->payload["sub"], expected_id);
  EXPECT_EQ(id->payload["iss"], "http://id.test/");
  EXPECT_EQ(id->payload["nonce"], "n0nce");
  EXPECT_EQ(id->payload["email"], "alice@example.com");
  EXPECT_EQ(id->payload["email_verified"], true);
  EXPECT_EQ(id->payload["name"], "Alice Upstream");
  EXPECT_EQ(id->payload["given_name"], "Alice");

  auto u = user(expected_id);
  ASSERT_EQ(u.status, 200) << u.body;
  auto ub = Json::parse(u.body);
  EXPECT_EQ(ub["identities"], Json::parse(R"([{"connection":"upstream","user_id":")" + up_user_ +
                                          R"(","provider":"oidc","isSocial":false}])"));
  EXPECT_EQ(ub["logins_count"], 1);
  EXPECT_EQ(ub["nickname"], "alice");
  Json success;
  for (const auto& e : logs())
    if (e["type"] == "s") success = e;
  EXPECT_EQ(success["connection"], "upstream");
  EXPECT_EQ(success["strategy"], "oidc");
  EXPECT_EQ(success["user_id"], expected_id);
  EXPECT_EQ(success["user_name"], "alice@example.com");
  // The binding cookie is gone; the downstream session is set.
  EXPECT_EQ(jar_["id.test"].size(), 1u);
  EXPECT_EQ(jar_["id.test"].begin()->first, "ks_session_control_plane");
}

TEST_F(Federated, SecondLoginFindsTheSameUserWithCachedMetadata) {
  federated_login();
  http_->seen.clear();
  const std::string cb = federated_login();  // the upstream's session answers this time
  ASSERT_TRUE(cb.starts_with(std::string(kAppCallback) + "?code=")) << cb;
  EXPECT_EQ(http_->requests(), std::vector<std::string>{"POST http://up.test/t/idp/oauth/token"});
  auto ub = Json::parse(user("oidc|" + up_user_).body);
  EXPECT_EQ(ub["logins_count"], 2);
  auto all = Json::parse(call("GET", "/api/v2/users?include_totals=true", nullptr, admin_).body);
  EXPECT_EQ(all["total"], 1);
  // After the TTL, discovery and JWKS are fetched again.
  clock_->advance(601);
  http_->seen.clear();
  federated_login();
  EXPECT_EQ(http_->requests(),
            (std::vector<std::string>{"GET http://up.test/t/idp/.well-known/openid-configuration",
                                      "POST http://up.test/t/idp/oauth/token",
                                      "GET http://up.test/t/idp/.well-known/jwks.json"}));
}

TEST_F(Federated, UnknownOrTamperedStateIsAnErrorPage) {
  auto bogus = go("GET", std::string(kFedCallback) + "?code=abc&state=bogus");
  EXPECT_EQ(bogus.status, 400);
  EXPECT_TRUE(header(bogus, "location").empty());
  const std::string back = upstream_login(start());
  const std::string state = query_param(back, "state");
  auto tampered = go("GET", std::string(kFedCallback) + "?code=" + query_param(back, "code") +
                                "&state=" + state + "x");
  EXPECT_EQ(tampered.status, 400);
  EXPECT_TRUE(header(tampered, "location").empty());
  // The right state from another browser (no binding cookie): refused too.
  auto jar = jar_;
  jar_.clear();
  auto elsewhere = go("GET", back);
  EXPECT_EQ(elsewhere.status, 400);
  EXPECT_TRUE(header(elsewhere, "location").empty());
  // The browser that started it completes; the state is then spent.
  jar_ = jar;
  auto ok = go("GET", back);
  ASSERT_EQ(ok.status, 302);
  EXPECT_TRUE(header(ok, "location").starts_with(std::string(kAppCallback) + "?code="));
  EXPECT_EQ(go("GET", back).status, 400);
  // No redirect anywhere, even with an error parameter and an unknown state.
  auto err = go("GET", std::string(kFedCallback) + "?error=access_denied&state=nope");
  EXPECT_EQ(err.status, 400);
  EXPECT_TRUE(header(err, "location").empty());
}

TEST_F(Federated, UpstreamErrorGoesBackToTheClient) {
  const std::string state = query_param(start(), "state");
  auto r = go("GET", std::string(kFedCallback) +
                         "?error=access_denied&error_description=User%20cancelled&state=" + state);
  ASSERT_EQ(r.status, 302);
  const std::string loc = header(r, "location");
  EXPECT_TRUE(loc.starts_with(std::string(kAppCallback) + "?")) << loc;
  EXPECT_EQ(query_param(loc, "error"), "access_denied");
  EXPECT_EQ(query_param(loc, "error_description"), "User cancelled");
  EXPECT_EQ(query_param(loc, "state"), "st4te");
  EXPECT_EQ(logs()[0]["type"], "f");
  EXPECT_EQ(logs()[0]["connection"], "upstream");
  // The code exchange never happened.
  EXPECT_EQ(http_->requests().size(), 1u);
}

TEST_F(Federated, BadIdTokensAreRefused) {
  // Each case rewrites the upstream's token response; the ID token is re-signed with the
  // upstream tenant's real key unless the case is about the signature.
  auto resign = [&](std::function<void(Json&)> change) {
    return [this, change](const std::string& id_token) {
      auto jws = ks::crypto::jws_parse(id_token);
      Json claims = jws->payload;
      change(claims);
      auto key = upstream_->impl().keys().signing_key("idp");
      return ks::crypto::jws_sign(*key.key, key.kid, claims, upstream_->impl().rng(),
                                  {{"typ", "JWT"}});
    };
  };
  std::vector<std::pair<std::string, std::function<std::string(const std::string&)>>> cases = {
      {"The ID token nonce does not match", resign([](Json& c) { c["nonce"] = "other"; })},
      {"The ID token is meant for another audience",
       resign([](Json& c) { c["aud"] = "someone-else"; })},
      {"The ID token was issued by another issuer",
       resign([](Json& c) { c["iss"] = "http://evil.test/"; })},
      {"The ID token has expired", resign([this](Json& c) { c["exp"] = clock_->now(); })},
      {"The ID token signature is invalid",
       [](const std::string& t) {
         // Same header and signature, another payload.
         auto jws = ks::crypto::jws_parse(t);
         Json p = jws->payload;
         p["sub"] = "mallory";
         return t.substr(0, t.find('.')) + "." + ks::crypto::base64url_encode(p.dump()) +
                t.substr(t.rfind('.'));
       }},
      {"Unsupported ID token algorithm: none",
       [](const std::string& t) {
         auto jws = ks::crypto::jws_parse(t);
         return ks::crypto::base64url_encode(R"({"alg":"none"})") + "." +
                ks::crypto::base64url_encode(jws->payload.dump()) + ".";
       }},
  };
  for (const auto& [why, forge] : cases) {
    http_->rewrite = [&forge](const std::string& key, HttpResult& r) {
      if (key != "POST http://up.test/t/idp/oauth/token") return;
      Json body = Json::parse(r.body);
      body["id_token"] = forge(body["id_token"].get<std::string>());
      r.body = body.dump();
    };
    const std::string cb = federated_login();
    EXPECT_EQ(query_param(cb, "error"), "access_denied") << why << ": " << cb;
    EXPECT_EQ(query_param(cb, "error_description"), why);
    EXPECT_EQ(query_param(cb, "state"), "st4te");
    EXPECT_EQ(logs()[0]["type"], "f");
  }
  EXPECT_EQ(user("oidc|" + up_user_).status, 404);
  EXPECT_EQ(user("oidc|mallory").status, 404);
  // Untouched, the same flow succeeds.
  http_->rewrite = nullptr;
  EXPECT_TRUE(federated_login().starts_with(std::string(kAppCallback) + "?code="));
  EXPECT_EQ(user("oidc|" + up_user_).status, 200);
}

TEST_F(Federated, RefusedCodeExchangeAndUnreachableUpstream) {
  http_->rewrite = [](const std::string& key, HttpResult& r) {
    if (key == "POST http://up.test/t/idp/oauth/token")
      r = json_result({{"error", "invalid_grant"}}, 400);
  };
  auto cb = federated_login();
  EXPECT_EQ(query_param(cb, "error"), "access_denied");
  EXPECT_EQ(query_param(cb, "error_description"),
            "The identity provider refused the authorization code: invalid_grant");
  http_->rewrite = [](const std::string& key, HttpResult& r) {
    if (key == "POST http://up.test/t/idp/oauth/token") r = {0, "timeout", {}};
  };
  cb = federated_login();
  EXPECT_EQ(query_param(cb, "error"), "temporarily_unavailable");
  EXPECT_EQ(user("oidc|" + up_user_).status, 404);
}

TEST_F(Federated, DatabaseUserWithTheSameEmailIsNotLinked) {
  auto local = call("POST", "/api/v2/users",
                    {{"email", "alice@example.com"},
                     {"password", "a local password"},
                     {"connection", "Username-Password-Authentication"},
                     {"email_verified", true}},
                    admin_);
  ASSERT_EQ(local.status, 201);
  const std::string cb = federated_login();
  auto tokens = exchange(query_param(cb, "code"));
  auto id = ks::crypto::jws_parse(tokens["id_token"].get<std::string>());
  EXPECT_EQ(id->payload["sub"], "oidc|" + up_user_);
  EXPECT_NE(id->payload["sub"], Json::parse(local.body)["user_id"]);
  auto same = Json::parse(
      call("GET", "/api/v2/users-by-email?email=alice%40example.com", nullptr, admin_).body);
  EXPECT_EQ(same.size(), 2u);
}

TEST_F(Federated, UnknownAndDisabledConnections) {
  auto unknown = go("GET", authorize_url("&connection=nope"));
  ASSERT_EQ(unknown.status, 302);
  EXPECT_EQ(query_param(header(unknown, "location"), "error"), "invalid_request");
  EXPECT_EQ(query_param(header(unknown, "location"), "error_description"),
            "the connection was not found");
  auto con = Json::parse(call("GET", "/api/v2/connections?name=upstream", nullptr, admin_).body);
  ASSERT_EQ(con.size(), 1u);
  ASSERT_EQ(call("PATCH", "/api/v2/connections/" + con[0]["id"].get<std::string>(),
                 {{"enabled_clients", {"another-client"}}}, admin_)
                .status,
            200);
  auto disabled = go("GET", authorize_url("&connection=upstream"));
  EXPECT_EQ(query_param(header(disabled, "location"), "error"), "invalid_request");
  EXPECT_TRUE(http_->seen.empty());
  // The database connection keeps the hosted form.
  auto db = go("GET", authorize_url("&connection=Username-Password-Authentication"));
  EXPECT_TRUE(header(db, "location").starts_with("http://id.test/u/login?state="));
}

TEST_F(Federated, LoginPageShowsAButtonPerEnabledConnection) {
  auto a = go("GET", authorize_url(""));
  const std::string loc = header(a, "location");
  ASSERT_TRUE(loc.starts_with("http://id.test/u/login?state=")) << loc;
  const std::string state = query_param(loc, "state");
  call("POST", "/api/v2/connections",
       {{"name", "hidden"},
        {"strategy", "github"},
        {"enabled_clients", {"another-client"}},
        {"options", {{"client_id", "x"}}}},
       admin_);
  auto page = go("GET", loc);
  ASSERT_EQ(page.status, 200);
  const std::string href = "http://id.test/login/federated?state=" + state +
                           "&amp;connection=upstream\">Continue with Upstream IdP</a>";
  EXPECT_NE(page.body.find(href), std::string::npos) << page.body;
  EXPECT_EQ(page.body.find("connection=hidden"), std::string::npos);
  // The button continues the same transaction at the upstream.
  auto b = go("GET", "http://id.test/login/federated?state=" + state + "&connection=upstream");
  ASSERT_EQ(b.status, 302);
  const std::string up = header(b, "location");
  ASSERT_TRUE(up.starts_with("http://up.test/t/idp/authorize?")) << up;
  auto cb = go("GET", upstream_login(up));
  ASSERT_EQ(cb.status, 302);
  EXPECT_TRUE(header(cb, "location").starts_with(std::string(kAppCallback) + "?code="));
  EXPECT_EQ(go("GET", "http://id.test/login/federated?state=nope&connection=upstream").status, 400);
  EXPECT_EQ(
      go("GET", "http://id.test/login/federated?state=" + state + "&connection=hidden").status,
      400);
}

// ---- google-oauth2 and github ------------------------------------------------------------------

class Social : public Federated {
 public:
  void SetUp() override {
    Federated::SetUp();
    ASSERT_EQ(call("POST", "/api/v2/connections",
                   {{"name", "google-oauth2"},
                    {"strategy", "google-oauth2"},
                    {"options", {{"client_id", "g-client"}, {"client_secret", "g-secret"}}}},
                   admin_)
                  .status,
              201);
    ASSERT_EQ(call("POST", "/api/v2/connections",
                   {{"name", "github"},
                    {"strategy", "github"},
                    {"options", {{"client_id", "gh-client"}, {"client_secret", "gh-secret"}}}},
                   admin_)
                  .status,
              201);
  }
};

TEST_F(Social, GoogleRedirect) {
  const std::string loc = start("google-oauth2");
  ASSERT_TRUE(loc.starts_with("https://accounts.google.com/o/oauth2/v2/auth?")) << loc;
  auto q = query_of(loc);
  EXPECT_EQ(q.get_or("response_type", ""), "code");
  EXPECT_EQ(q.get_or("client_id", ""), "g-client");
  EXPECT_EQ(q.get_or("redirect_uri", ""), kFedCallback);
  EXPECT_EQ(q.get_or("scope", ""), "openid profile email");
  EXPECT_EQ(q.get_or("state", "").size(), 32u);
  EXPECT_EQ(q.get_or("nonce", "").size(), 32u);
  EXPECT_EQ(q.get_or("code_challenge_method", ""), "S256");
  EXPECT_TRUE(http_->seen.empty());  // fixed endpoints: no discovery
}

TEST_F(Social, GithubRedirect) {
  const std::string loc = start("github");
  ASSERT_TRUE(loc.starts_with("https://github.com/login/oauth/authorize?")) << loc;
  auto q = query_of(loc);
  EXPECT_EQ(q.get_or("client_id", ""), "gh-client");
  EXPECT_EQ(q.get_or("redirect_uri", ""), kFedCallback);
  EXPECT_EQ(q.get_or("scope", ""), "read:user user:email");
  EXPECT_EQ(q.get_or("state", "").size(), 32u);
  EXPECT_FALSE(q.has("nonce"));
  EXPECT_FALSE(q.has("code_challenge"));
  EXPECT_TRUE(http_->seen.empty());
}

TEST_F(Social, ScopeOptionAsArray) {
  auto cons = Json::parse(call("GET", "/api/v2/connections?name=github", nullptr, admin_).body);
  ASSERT_EQ(call("PATCH", "/api/v2/connections/" + cons[0]["id"].get<std::string>(),
                 {{"options", {{"client_id", "gh-client"}, {"scope", {"read:user"}}}}}, admin_)
                .status,
            200);
  EXPECT_EQ(query_param(start("github"), "scope"), "read:user");
}

TEST_F(Social, GithubCallbackWithCannedApi) {
  http_->canned["POST https://github.com/login/oauth/access_token"] =
      json_result({{"access_token", "gho_abc"}, {"token_type", "bearer"}});
  http_->canned["GET https://api.github.com/user"] = json_result(
      {{"id", 4242}, {"login", "octo"}, {"name", nullptr}, {"avatar_url", "https://a.test/o.png"}});
  http_->canned["GET https://api.github.com/user/emails"] = json_result(
      Json::array({{{"email", "other@example.com"}, {"primary", false}},
                   {{"email", "Octo@Example.com"}, {"primary", true}, {"verified", true}}}));
  const std::string state = query_param(start("github"), "state");
  auto cb = go("GET", std::string(kFedCallback) + "?code=gh-code&state=" + state);
  ASSERT_EQ(cb.status, 302) << cb.body;
  EXPECT_TRUE(header(cb, "location").starts_with(std::string(kAppCallback) + "?code="));
  ASSERT_EQ(http_->seen.size(), 3u);
  auto form = ks::http::Params::parse(http_->seen[0].body);
  EXPECT_EQ(form.get_or("client_id", ""), "gh-client");
  EXPECT_EQ(form.get_or("client_secret", ""), "gh-secret");
  EXPECT_EQ(form.get_or("code", ""), "gh-code");
  EXPECT_EQ(http_->seen[0].header("accept"), "application/json");
  EXPECT_EQ(http_->seen[1].header("authorization"), "Bearer gho_abc");
  auto u = Json::parse(user("github|4242").body);
  EXPECT_EQ(u["nickname"], "octo");
  EXPECT_EQ(u["name"], "octo");
  EXPECT_EQ(u["email"], "octo@example.com");
  EXPECT_EQ(u["email_verified"], true);
  EXPECT_EQ(u["picture"], "https://a.test/o.png");
  EXPECT_EQ(u["identities"][0]["isSocial"], true);
  EXPECT_EQ(u["identities"][0]["user_id"], "4242");
}

TEST_F(Social, GoogleCallbackValidatesAndRefetchesRotatedKeys) {
  auto rng = ks::crypto::seeded_random(99);
  auto k1 = ks::crypto::SigningKey::generate(ks::crypto::Alg::ES256, *rng);
  auto k2 = ks::crypto::SigningKey::generate(ks::crypto::Alg::ES256, *rng);
  const std::string certs = "GET https://www.googleapis.com/oauth2/v3/certs";
  http_->canned[certs] = json_result({{"keys", {k1->public_jwk("g1")}}});
  auto login_with = [&](const ks::crypto::SigningKey& key, const std::string& kid) {
    const std::string loc = start("google-oauth2");
    Json claims = {{"iss", "https://accounts.google.com"},
                   {"aud", "g-client"},
                   {"azp", "g-client"},
                   {"sub", "110169484474386276334"},
                   {"email", "g@example.com"},
                   {"email_verified", true},
                   {"name", "Gee"},
                   {"picture", "https://lh3.test/p.jpg"},
                   {"iat", clock_->now()},
                   {"exp", clock_->now() + 3600},
                   {"nonce", query_param(loc, "nonce")}};
    http_->canned["POST https://oauth2.googleapis.com/token"] =
        json_result({{"access_token", "ya29.x"},
                     {"id_token", ks::crypto::jws_sign(key, kid, claims, *rng)},
                     {"token_type", "Bearer"}});
    auto cb =
        go("GET", std::string(kFedCallback) + "?code=g-code&state=" + query_param(loc, "state"));
    EXPECT_EQ(cb.status, 302);
    return header(cb, "location");
  };
  EXPECT_TRUE(login_with(*k1, "g1").starts_with(std::string(kAppCallback) + "?code="));
  auto form = ks::http::Params::parse(http_->seen[0].body);
  EXPECT_EQ(form.get_or("client_secret", ""), "g-secret");
  EXPECT_EQ(form.get_or("code_verifier", "").size(), 43u);
  auto u = Json::parse(user("google-oauth2|110169484474386276334").body);
  EXPECT_EQ(u["email"], "g@example.com");
  EXPECT_EQ(u["name"], "Gee");
  EXPECT_EQ(u["identities"][0]["provider"], "google-oauth2");

  // Google rotated to g2: the cached JWKS lacks it, so it is fetched once more.
  http_->canned[certs] = json_result({{"keys", {k1->public_jwk("g1"), k2->public_jwk("g2")}}});
  http_->seen.clear();
  EXPECT_TRUE(login_with(*k2, "g2").starts_with(std::string(kAppCallback) + "?code="));
  EXPECT_EQ(http_->requests(),
            (std::vector<std::string>{"POST https://oauth2.googleapis.com/token", certs}));
  EXPECT_EQ(Json::parse(user("google-oauth2|110169484474386276334").body)["logins_count"], 2);
  // A kid nobody published: one refetch, then refused.
  http_->seen.clear();
  auto cb = login_with(*k2, "g3");
  EXPECT_EQ(query_param(cb, "error_description"), "The ID token signature is invalid");
  EXPECT_EQ(http_->requests(),
            (std::vector<std::string>{"POST https://oauth2.googleapis.com/token", certs}));
  // Signed by g1's key but claiming g2: refused without a refetch.
  http_->seen.clear();
  cb = login_with(*k1, "g2");
  EXPECT_EQ(query_param(cb, "error_description"), "The ID token signature is invalid");
  EXPECT_EQ(http_->requests().size(), 1u);
}

// ---- the libcurl client ------------------------------------------------------------------------

// One-shot HTTP server on 127.0.0.1: answers the first request with `response` and keeps it.
class OneShotServer {
 public:
  explicit OneShotServer(std::string response) : response_(std::move(response)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    listen(fd_, 1);
    thread_ = std::thread([this] {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      char buf[4096];
      while (request_.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = read(c, buf, sizeof buf);
        if (n <= 0) break;
        request_.append(buf, static_cast<size_t>(n));
      }
      auto cl = request_.find("Content-Length: ");
      if (cl != std::string::npos) {
        size_t want = std::stoul(request_.substr(cl + 16));
        while (request_.size() - request_.find("\r\n\r\n") - 4 < want) {
          ssize_t n = read(c, buf, sizeof buf);
          if (n <= 0) break;
          request_.append(buf, static_cast<size_t>(n));
        }
      }
      size_t off = 0;
      while (off < response_.size()) {
        ssize_t n = send(c, response_.data() + off, response_.size() - off, MSG_NOSIGNAL);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
      }
      close(c);
    });
  }
  ~OneShotServer() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    if (thread_.joinable()) thread_.join();
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  const std::string& request() {
    if (thread_.joinable()) thread_.join();
    return request_;
  }

 private:
  std::string response_;
  std::string request_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

TEST(CurlHttpClient, RefusesOtherSchemesAndMalformedInput) {
  auto c = ks::net::curl_http_client();
  for (const char* url :
       {"file:///etc/passwd", "ftp://127.0.0.1/", "gopher://x/", "/relative", "http://a b/"}) {
    auto r = c->fetch("GET", url, {}, "");
    EXPECT_EQ(r.status, 0) << url;
    EXPECT_FALSE(r.body.empty());
  }
  EXPECT_EQ(c->fetch("GET", "http://127.0.0.1:1/", {{"x-a", "1\r\nx-b: 2"}}, "").status, 0);
}

TEST(CurlHttpClient, PostsAndDoesNotFollowRedirects) {
  OneShotServer s(
      "HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/\r\nContent-Type: text/plain\r\n"
      "Content-Length: 2\r\nConnection: close\r\n\r\nno");
  auto c = ks::net::curl_http_client();
  auto r = c->fetch("POST", s.url("/token"),
                    {{"content-type", "application/x-www-form-urlencoded"}, {"accept", "a/b"}},
                    "a=1&b=2");
  EXPECT_EQ(r.status, 302);
  EXPECT_EQ(r.body, "no");
  bool has_location = false;
  for (const auto& h : r.headers)
    has_location = has_location || (h.name == "location" && h.value == "http://169.254.169.254/");
  EXPECT_TRUE(has_location);
  const std::string& req = s.request();
  EXPECT_TRUE(req.starts_with("POST /token HTTP/1.1\r\n")) << req;
  EXPECT_NE(req.find("\r\naccept: a/b\r\n"), std::string::npos) << req;
  EXPECT_TRUE(req.ends_with("\r\n\r\na=1&b=2")) << req;
}

TEST(CurlHttpClient, RefusesResponsesOverOneMebibyte) {
  const std::string big(ks::net::kMaxResponseBytes + 1, 'x');
  OneShotServer s("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + big);  // no Content-Length
  auto r = ks::net::curl_http_client()->fetch("GET", s.url("/"), {}, "");
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.body, "response too large");
}

}  // namespace
