// The engine end to end through Engine::handle, with an in-memory store, a manual clock and a
// seeded random source: exact and fast.
#include "core/engine.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "core/crypto/crypto.h"
#include "core/engine_impl.h"
#include "core/http/form.h"
#include "core/oidc/verify.h"
#include "tests/unit/support/engine_fixture.h"

using ks::Json;
using ks::http::Request;
using ks::http::Response;

using ks::test::EngineTest;
using ks::test::kBootId;
using ks::test::kBootSecret;

TEST_F(EngineTest, HealthAndDiscovery) {
  EXPECT_EQ(call("GET", "/healthz").status, 200);
  auto d = call("GET", "/.well-known/openid-configuration");
  ASSERT_EQ(d.status, 200);
  EXPECT_EQ(body(d)["issuer"], "http://id.test/");
  auto t = call("GET", "/t/control_plane/.well-known/openid-configuration");
  EXPECT_EQ(body(t)["issuer"], "http://id.test/t/control_plane/");
  EXPECT_EQ(body(t)["token_endpoint"], "http://id.test/t/control_plane/oauth/token");
}

TEST_F(EngineTest, ClientCredentialsTokenHasClaimsAndVerifiesWithJwks) {
  auto tok = admin();
  auto jws = ks::crypto::jws_parse(tok);
  ASSERT_TRUE(jws);
  EXPECT_EQ(jws->header["typ"], "at+jwt");
  EXPECT_EQ(jws->payload["iss"], "http://id.test/");
  EXPECT_EQ(jws->payload["sub"], std::string(kBootId) + "@clients");
  EXPECT_EQ(jws->payload["aud"], "urn:keystead:management");
  EXPECT_EQ(jws->payload["azp"], kBootId);
  EXPECT_EQ(jws->payload["tenant_id"], "control_plane");
  EXPECT_EQ(jws->payload["iat"], 1'800'000'000);
  EXPECT_GT(jws->payload["exp"].get<int64_t>(), 1'800'000'000);
  EXPECT_NE(jws->payload["scope"].get<std::string>().find("admin:organizations"),
            std::string::npos);
  auto jwks = body(call("GET", "/.well-known/jwks.json"));
  // The current key and the next one are published.
  ASSERT_EQ(jwks["keys"].size(), 2u);
  EXPECT_TRUE(jwks["keys"][0]["kid"] == jws->header["kid"] ||
              jwks["keys"][1]["kid"] == jws->header["kid"]);
}

TEST_F(EngineTest, TokenEndpointErrors) {
  auto form = [&](const std::string& f, const std::string& basic = "") {
    Request r;
    r.method = "POST";
    r.set_target("/oauth/token");
    r.add_header("content-type", "application/x-www-form-urlencoded");
    if (!basic.empty()) r.add_header("authorization", "Basic " + ks::crypto::base64_encode(basic));
    r.body = f;
    return engine_->handle(r);
  };
  auto bad = form(
      "grant_type=client_credentials&client_id=boot-client&client_secret=nope&audience=urn:"
      "keystead:management");
  EXPECT_EQ(bad.status, 401);
  EXPECT_EQ(body(bad)["error"], "invalid_client");
  auto basic = form("grant_type=client_credentials&audience=urn:keystead:management",
                    std::string(kBootId) + ":" + kBootSecret);
  EXPECT_EQ(basic.status, 200) << basic.body;
  auto noaud = form("grant_type=client_credentials", std::string(kBootId) + ":" + kBootSecret);
  EXPECT_EQ(noaud.status, 400);
  EXPECT_EQ(body(noaud)["error"], "invalid_request");
  auto unknown = form("grant_type=client_credentials&audience=https://nope",
                      std::string(kBootId) + ":" + kBootSecret);
  EXPECT_EQ(unknown.status, 403);
  EXPECT_EQ(body(unknown)["error"], "access_denied");
  auto grant = form("grant_type=magic", std::string(kBootId) + ":" + kBootSecret);
  EXPECT_EQ(grant.status, 400);
  EXPECT_EQ(body(grant)["error"], "unsupported_grant_type");
  // Narrowing the scope.
  auto narrow = form(
      "grant_type=client_credentials&audience=urn:keystead:management&scope=read:users%20bogus",
      std::string(kBootId) + ":" + kBootSecret);
  EXPECT_EQ(body(narrow)["scope"], "read:users");
}

TEST_F(EngineTest, TenantLifecycleThroughApi) {
  auto tok = admin();
  auto c = call("POST", "/api/v2/tenants", {{"id", "acme"}, {"friendly_name", "Acme"}}, tok);
  ASSERT_EQ(c.status, 201) << c.body;
  EXPECT_EQ(body(c)["status"], "active");
  EXPECT_EQ(call("POST", "/api/v2/tenants", {{"id", "acme"}}, tok).status, 409);
  EXPECT_EQ(call("POST", "/api/v2/tenants", {{"id", "Bad!"}}, tok).status, 400);
  EXPECT_EQ(call("POST", "/api/v2/tenants", {{"id", "www"}}, tok).status, 400);
  EXPECT_EQ(call("POST", "/api/v2/tenants", {{"id", 7}}, tok).status, 400);
  auto orgs = body(call("GET", "/api/v2/organizations", nullptr, tok));
  bool found = false;
  for (const auto& o : orgs)
    found = found || (o["name"] == "acme" && o["metadata"]["tenant_id"] == "acme");
  EXPECT_TRUE(found);
  EXPECT_EQ(call("GET", "/t/acme/.well-known/openid-configuration").status, 200);
  auto p = call("PATCH", "/api/v2/tenants/acme", {{"friendly_name", "Acme 2"}}, tok);
  EXPECT_EQ(body(p)["friendly_name"], "Acme 2");
  EXPECT_EQ(call("DELETE", "/api/v2/tenants/control_plane", nullptr, tok).status, 403);
  EXPECT_EQ(call("DELETE", "/api/v2/tenants/acme", nullptr, tok).status, 204);
  EXPECT_EQ(call("GET", "/api/v2/tenants/acme", nullptr, tok).status, 404);
  EXPECT_EQ(call("GET", "/t/acme/.well-known/openid-configuration").status, 404);
  EXPECT_EQ(call("DELETE", "/api/v2/tenants/acme", nullptr, tok).status, 404);
  EXPECT_TRUE(body(call("GET", "/api/v2/organizations", nullptr, tok)).size() == 0);
}

TEST_F(EngineTest, ManagementAuthErrors) {
  EXPECT_EQ(call("GET", "/api/v2/users").status, 401);
  EXPECT_EQ(call("GET", "/api/v2/users", nullptr, "garbage").status, 401);
  // alg none with plausible claims.
  auto none =
      ks::crypto::base64url_encode(R"({"alg":"none","typ":"JWT","kid":"x"})") + "." +
      ks::crypto::base64url_encode(
          R"({"iss":"http://id.test/","tenant_id":"control_plane","aud":"urn:keystead:management","exp":9999999999,"scope":"read:users"})") +
      ".";
  EXPECT_EQ(call("GET", "/api/v2/users", nullptr, none).status, 401);
  // Tampered payload.
  auto tok = admin();
  auto jws = ks::crypto::jws_parse(tok);
  Json claims = jws->payload;
  claims["tenant_id"] = "control_plane";
  claims["scope"] = "read:users admin:organizations";
  auto dot = tok.find('.');
  auto dot2 = tok.find('.', dot + 1);
  auto tampered =
      tok.substr(0, dot) + "." + ks::crypto::base64url_encode(claims.dump()) + tok.substr(dot2);
  EXPECT_EQ(call("GET", "/api/v2/users", nullptr, tampered).status, 401);
  // Expiry, with the injected clock.
  EXPECT_EQ(call("GET", "/api/v2/users", nullptr, tok).status, 200);
  clock_->advance(86400 + 1);
  auto expired = call("GET", "/api/v2/users", nullptr, tok);
  EXPECT_EQ(expired.status, 401);
  EXPECT_EQ(body(expired)["message"], "Expired token");
}

TEST_F(EngineTest, TenantTokenActsOnlyOnItsTenant) {
  auto tok = admin();
  ASSERT_EQ(call("POST", "/api/v2/tenants", {{"id", "acme"}}, tok).status, 201);
  ASSERT_EQ(call("POST", "/api/v2/tenants", {{"id", "other"}}, tok).status, 201);
  auto client = body(call("POST", "/t/acme/api/v2/clients",
                          {{"name", "m2m"}, {"app_type", "non_interactive"}}, tok));
  auto g = call("POST", "/t/acme/api/v2/client-grants",
                {{"client_id", client["client_id"]},
                 {"audience", "urn:keystead:management"},
                 {"scope", {"read:users"}}},
                tok);
  ASSERT_EQ(g.status, 201) << g.body;
  auto acme_tok = token("/t/acme", client["client_id"], client["client_secret"]);
  EXPECT_EQ(call("GET", "/t/acme/api/v2/users", nullptr, acme_tok).status, 200);
  EXPECT_EQ(call("GET", "/t/acme/api/v2/clients", nullptr, acme_tok).status, 403);
  EXPECT_EQ(call("GET", "/t/other/api/v2/users", nullptr, acme_tok).status, 403);
  EXPECT_EQ(call("GET", "/api/v2/users", nullptr, acme_tok).status, 403);
  // The tenant's token endpoint does not know the control plane's clients.
  auto r = call("POST", "/t/acme/oauth/token",
                std::string("grant_type=client_credentials&client_id=") + kBootId +
                    "&client_secret=" + kBootSecret + "&audience=urn:keystead:management",
                "", "application/x-www-form-urlencoded");
  EXPECT_EQ(r.status, 401);
}

TEST_F(EngineTest, UsersRolesPermissionsOrganizations) {
  auto tok = admin();
  ASSERT_EQ(call("POST", "/api/v2/tenants", {{"id", "acme"}}, tok).status, 201);
  const std::string t = "/t/acme/api/v2";
  auto u = call("POST", t + "/users",
                {{"email", "Alice@Example.com"},
                 {"password", "correct horse battery"},
                 {"connection", "Username-Password-Authentication"}},
                tok);
  ASSERT_EQ(u.status, 201) << u.body;
  auto user = body(u);
  const std::string uid = user["user_id"];
  EXPECT_TRUE(uid.starts_with("auth0|"));
  EXPECT_EQ(uid.size(), 6u + 24u);
  EXPECT_EQ(user["email"], "alice@example.com");
  EXPECT_EQ(u.body.find("password"), std::string::npos);
  EXPECT_EQ(u.body.find("argon2"), std::string::npos);
  EXPECT_EQ(call("POST", t + "/users",
                 {{"email", "alice@example.com"},
                  {"password", "another long one"},
                  {"connection", "Username-Password-Authentication"}},
                 tok)
                .status,
            409);
  EXPECT_EQ(call("POST", t + "/users",
                 {{"email", "b@example.com"},
                  {"password", "short"},
                  {"connection", "Username-Password-Authentication"}},
                 tok)
                .status,
            400);
  EXPECT_EQ(
      call("POST", t + "/users",
           {{"email", "b@example.com"}, {"password", "long enough pw"}, {"connection", "nope"}},
           tok)
          .status,
      400);

  auto rs = call("POST", t + "/resource-servers",
                 {{"name", "Things"},
                  {"identifier", "https://api.acme.test"},
                  {"scopes", {{{"value", "read:things"}, {"description", "Read"}}}}},
                 tok);
  ASSERT_EQ(rs.status, 201) << rs.body;
  EXPECT_TRUE(body(rs)["id"].get<std::string>().starts_with("api_"));
  EXPECT_EQ(
      call("POST", t + "/resource-servers", {{"identifier", "https://api.acme.test"}}, tok).status,
      409);
  EXPECT_EQ(
      call("POST", t + "/resource-servers", {{"identifier", "x"}, {"is_system", true}}, tok).status,
      400);

  auto role = body(call("POST", t + "/roles", {{"name", "reader"}}, tok));
  const std::string rid = role["id"];
  EXPECT_TRUE(rid.starts_with("rol_"));
  Json perms = {{"permissions",
                 {{{"resource_server_identifier", "https://api.acme.test"},
                   {"permission_name", "read:things"}}}}};
  EXPECT_EQ(call("POST", t + "/roles/" + rid + "/permissions", perms, tok).status, 204);
  Json bad_perms = {
      {"permissions",
       {{{"resource_server_identifier", "https://api.acme.test"}, {"permission_name", "nope"}}}}};
  EXPECT_EQ(call("POST", t + "/roles/" + rid + "/permissions", bad_perms, tok).status, 400);
  auto rp = body(call("GET", t + "/roles/" + rid + "/permissions", nullptr, tok));
  ASSERT_EQ(rp.size(), 1u);
  EXPECT_EQ(rp[0]["permission_name"], "read:things");
  EXPECT_EQ(rp[0]["resource_server_name"], "Things");

  const std::string uenc = ks::http::url_encode(uid);
  EXPECT_EQ(call("POST", t + "/users/" + uenc + "/roles", {{"roles", {rid}}}, tok).status, 204);
  auto ur = body(call("GET", t + "/users/" + uenc + "/roles?include_totals=true", nullptr, tok));
  EXPECT_EQ(ur["total"], 1);
  EXPECT_EQ(ur["roles"][0]["id"], rid);
  EXPECT_EQ(call("POST", t + "/users/" + uenc + "/permissions", perms, tok).status, 204);
  EXPECT_EQ(body(call("GET", t + "/users/" + uenc + "/permissions", nullptr, tok)).size(), 1u);

  auto org = body(
      call("POST", t + "/organizations", {{"name", "acme-east"}, {"display_name", "East"}}, tok));
  const std::string oid = org["id"];
  EXPECT_TRUE(oid.starts_with("org_"));
  EXPECT_EQ(
      call("POST", t + "/organizations/" + oid + "/members", {{"members", {uid}}}, tok).status,
      204);
  EXPECT_EQ(call("POST", t + "/organizations/" + oid + "/members/" + uenc + "/roles",
                 {{"roles", {rid}}}, tok)
                .status,
            204);
  auto members = body(call("GET", t + "/organizations/" + oid + "/members", nullptr, tok));
  ASSERT_EQ(members.size(), 1u);
  EXPECT_EQ(members[0]["roles"][0]["id"], rid);
  EXPECT_EQ(body(call("GET", t + "/organizations/name/acme-east", nullptr, tok))["id"], oid);
  EXPECT_EQ(body(call("GET", t + "/users/" + uenc + "/organizations", nullptr, tok))[0]["id"], oid);

  // Deleting the user removes every link that names it.
  EXPECT_EQ(call("DELETE", t + "/users/" + uenc, nullptr, tok).status, 204);
  EXPECT_EQ(body(call("GET", t + "/organizations/" + oid + "/members", nullptr, tok)).size(), 0u);
  EXPECT_EQ(body(call("GET", t + "/roles/" + rid + "/users", nullptr, tok)).size(), 0u);
  EXPECT_EQ(call("GET", t + "/users/" + uenc, nullptr, tok).status, 404);
}

TEST_F(EngineTest, ClientsSecretsAndRotation) {
  auto tok = admin();
  auto c = call("POST", "/api/v2/clients",
                {{"name", "web"}, {"callbacks", {"https://app.test/cb"}}}, tok);
  ASSERT_EQ(c.status, 201);
  auto client = body(c);
  const std::string id = client["client_id"], secret = client["client_secret"];
  EXPECT_EQ(id.size(), 32u);
  EXPECT_EQ(secret.size(), 64u);
  auto g = call("GET", "/api/v2/clients/" + id, nullptr, tok);
  EXPECT_EQ(g.body.find(secret), std::string::npos);
  EXPECT_FALSE(body(g).contains("client_secret"));
  auto rot = body(call("POST", "/api/v2/clients/" + id + "/rotate-secret", nullptr, tok));
  EXPECT_EQ(rot["client_secret"].get<std::string>().size(), 64u);
  EXPECT_NE(rot["client_secret"], secret);
  EXPECT_EQ(call("POST", "/api/v2/clients", {{"name", "x"}, {"client_secret", "mine"}}, tok).status,
            400);
  EXPECT_EQ(call("POST", "/api/v2/clients", {{"name", "x"}, {"app_type", "bogus"}}, tok).status,
            400);
  EXPECT_EQ(
      call("POST", "/api/v2/clients", {{"name", "x"}, {"callbacks", {"not a url"}}}, tok).status,
      400);
}

TEST_F(EngineTest, ConnectionSecretsAreWriteOnly) {
  auto tok = admin();
  auto c = call("POST", "/api/v2/connections",
                {{"name", "upstream"},
                 {"strategy", "oidc"},
                 {"options", {{"client_id", "abc"}, {"client_secret", "super-secret-value-1234"}}}},
                tok);
  ASSERT_EQ(c.status, 201) << c.body;
  EXPECT_EQ(c.body.find("super-secret-value"), std::string::npos);
  auto con = body(c);
  EXPECT_EQ(con["options"]["client_secret_hint"], "****1234");
  EXPECT_EQ(con["options"]["client_id"], "abc");
  // Patching options without the secret keeps it.
  auto p = body(call("PATCH", "/api/v2/connections/" + con["id"].get<std::string>(),
                     {{"options", {{"client_id", "def"}}}}, tok));
  EXPECT_EQ(p["options"]["client_secret_hint"], "****1234");
  EXPECT_EQ(p["options"]["client_id"], "def");
  EXPECT_EQ(
      call("POST", "/api/v2/connections", {{"name", "bad name"}, {"strategy", "oidc"}}, tok).status,
      400);
  EXPECT_EQ(
      call("POST", "/api/v2/connections", {{"name", "upstream"}, {"strategy", "oidc"}}, tok).status,
      409);
}

TEST_F(EngineTest, PaginationShapes) {
  auto tok = admin();
  for (int i = 0; i < 7; ++i)
    ASSERT_EQ(call("POST", "/api/v2/roles", {{"name", "r" + std::to_string(i)}}, tok).status, 201);
  // Tenant Admin exists too: 8 roles.
  auto bare = body(call("GET", "/api/v2/roles?per_page=3&page=1", nullptr, tok));
  ASSERT_TRUE(bare.is_array());
  EXPECT_EQ(bare.size(), 3u);
  auto tot = body(call("GET", "/api/v2/roles?per_page=3&page=2&include_totals=true", nullptr, tok));
  EXPECT_EQ(tot["start"], 6);
  EXPECT_EQ(tot["limit"], 3);
  EXPECT_EQ(tot["length"], 2);
  EXPECT_EQ(tot["total"], 8);
  EXPECT_EQ(call("GET", "/api/v2/roles?per_page=101", nullptr, tok).status, 400);
  EXPECT_EQ(call("GET", "/api/v2/roles?page=-1", nullptr, tok).status, 400);
  // Checkpoints walk every item exactly once.
  std::set<std::string> seen;
  std::string from;
  for (int guard = 0; guard < 10; ++guard) {
    auto page = body(
        call("GET", "/api/v2/roles?take=3" + (from.empty() ? "" : "&from=" + from), nullptr, tok));
    for (const auto& r : page["roles"]) EXPECT_TRUE(seen.insert(r["id"]).second);
    if (!page.contains("next")) break;
    from = page["next"];
  }
  EXPECT_EQ(seen.size(), 8u);
}

TEST_F(EngineTest, BadInputChangesNothing) {
  auto tok = admin();
  auto count = [&] {
    return body(call("GET", "/api/v2/roles?include_totals=true", nullptr, tok))["total"].get<int>();
  };
  const int before = count();
  EXPECT_EQ(call("POST", "/api/v2/roles", std::string("{not json"), tok).status, 400);
  EXPECT_EQ(call("POST", "/api/v2/roles", std::string("{\"name\":\"\xff\xfe\"}"), tok).status, 400);
  EXPECT_EQ(call("POST", "/api/v2/roles", {{"name", 5}}, tok).status, 400);
  EXPECT_EQ(call("POST", "/api/v2/roles", {{"name", "x"}, {"extra", 1}}, tok).status, 400);
  EXPECT_EQ(call("POST", "/api/v2/roles", Json::array(), tok).status, 400);
  EXPECT_EQ(count(), before);
  auto r = call("GET", "/api/v2/nothing-here", nullptr, tok);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(body(r)["statusCode"], 404);
  EXPECT_EQ(call("GET", "/t/nope/.well-known/jwks.json").status, 404);
  EXPECT_EQ(call("GET", "/t/NOPE!/.well-known/jwks.json").status, 400);
}

TEST_F(EngineTest, ManageRunsWithSystemAuthority) {
  auto r = engine_->manage("control_plane", "POST", "/tenants", {{"id", "cli-made"}});
  ASSERT_EQ(r.status, 201) << r.body;
  auto l = engine_->manage("control_plane", "GET", "/tenants");
  EXPECT_NE(l.body.find("cli-made"), std::string::npos);
  EXPECT_EQ(engine_->manage("BAD", "GET", "/users").status, 400);
}

// The host's user grant (Engine::token, ks_token_issue): tokens for a user the host vouches for,
// with the checks of a login, and never over HTTP.
TEST_F(EngineTest, HostUserGrantIssuesUserTokensInProcessOnly) {
  auto m = [&](const std::string& method, const std::string& path, const Json& b = nullptr) {
    auto r = engine_->manage("acme", method, path, b);
    EXPECT_LT(r.status, 300) << method << " " << path << ": " << r.body;
    return r.body.empty() ? Json() : body(r);
  };
  ASSERT_EQ(engine_->manage("control_plane", "POST", "/tenants", {{"id", "acme"}}).status, 201);
  const std::string ann = m("POST", "/users",
                            {{"connection", "Username-Password-Authentication"},
                             {"email", "ann@acme.test"},
                             {"password", "Correct-Horse-9"}})["user_id"];
  const std::string bob = m("POST", "/users",
                            {{"connection", "Username-Password-Authentication"},
                             {"email", "bob@acme.test"},
                             {"password", "Correct-Horse-9"},
                             {"blocked", true}})["user_id"];
  const std::string org = m("POST", "/organizations", {{"name", "shop"}})["id"];
  m("POST", "/organizations/" + org + "/members", {{"members", {ann}}});
  m("POST", "/resource-servers", {{"identifier", "https://api.acme.test"}, {"name", "API"}});
  const std::string app =
      m("POST", "/clients", {{"name", "web"}, {"app_type", "regular_web"}})["client_id"];

  auto grant = [&](const std::string& user, const std::string& extra = "") {
    return ks::http::Params::parse("grant_type=urn:keystead:grant-type:user&client_id=" + app +
                                   "&user_id=" + ks::http::url_encode(user) + extra);
  };
  auto ok = engine_->token("acme", grant(ann, "&audience=https://api.acme.test&organization=shop"));
  ASSERT_EQ(ok.status, 200) << ok.body;
  auto at = ks::crypto::jws_parse(body(ok)["access_token"].get<std::string>());
  ASSERT_TRUE(at);
  EXPECT_EQ(at->payload["sub"], ann);
  EXPECT_EQ(at->payload["iss"], "http://id.test/t/acme/");
  EXPECT_EQ(at->payload["azp"], app);
  EXPECT_EQ(at->payload["org_id"], org);
  EXPECT_EQ(at->payload["org_name"], "shop");
  EXPECT_NE(at->payload["aud"].dump().find("https://api.acme.test"), std::string::npos);
  auto id = ks::crypto::jws_parse(body(ok)["id_token"].get<std::string>());
  ASSERT_TRUE(id);
  EXPECT_EQ(id->payload["sub"], ann);
  EXPECT_EQ(id->payload["aud"], app);

  auto error = [&](const Response& r) { return body(r).value("error", ""); };
  EXPECT_EQ(error(engine_->token("acme", grant(""))), "invalid_request");
  EXPECT_EQ(error(engine_->token("acme", grant("auth0|nobody"))), "invalid_grant");
  EXPECT_EQ(engine_->token("acme", grant(bob)).status, 401);  // blocked
  auto not_member = engine_->token("acme", grant(bob, "&organization=shop"));
  EXPECT_EQ(not_member.status, 401);  // blocked comes first
  m("PATCH", "/users/" + ks::http::url_encode(bob), {{"blocked", false}});
  not_member = engine_->token("acme", grant(bob, "&organization=shop"));
  EXPECT_EQ(not_member.status, 403);
  EXPECT_EQ(error(not_member), "access_denied");
  EXPECT_EQ(error(engine_->token("acme", grant(ann, "&organization=nope"))), "invalid_request");
  EXPECT_EQ(engine_->token("acme", grant(ann, "&audience=https://nope.test")).status, 403);
  auto other =
      ks::http::Params::parse("grant_type=urn:keystead:grant-type:user&client_id=nope&user_id=" +
                              ks::http::url_encode(ann));
  EXPECT_EQ(error(engine_->token("acme", other)), "invalid_request");
  // Another tenant's user is unknown here.
  EXPECT_EQ(error(engine_->token("control_plane", grant(ann))), "invalid_request");

  // Over HTTP the grant does not exist, whoever asks.
  auto http = call("POST", "/t/acme/oauth/token", grant(ann).encode(), "",
                   "application/x-www-form-urlencoded");
  EXPECT_EQ(http.status, 400);
  EXPECT_EQ(error(http), "unsupported_grant_type");
  // The ordinary grants work in-process too.
  EXPECT_EQ(error(engine_->token("acme", ks::http::Params::parse("grant_type=password"))),
            "invalid_client");
}

// A bearer token presented again is answered from the cache of verified tokens, and everything
// that is not about the signature is still checked on each use. (Revocation with a cached token:
// SigningKeyRotationAndRevocation.)
TEST_F(EngineTest, VerifiedTokensAreKeptAndStillChecked) {
  auto tok = admin();
  auto& cache = impl().verified_tokens();
  const uint64_t hits = cache.hits();
  EXPECT_EQ(call("GET", "/api/v2/clients", nullptr, tok).status, 200);
  EXPECT_EQ(cache.hits(), hits);  // verified, and kept
  EXPECT_EQ(call("GET", "/api/v2/clients", nullptr, tok).status, 200);
  EXPECT_EQ(cache.hits(), hits + 1);

  // Other claims under the same signature are another token: verified, and refused.
  auto jws = ks::crypto::jws_parse(tok);
  ASSERT_TRUE(jws);
  Json forged = jws->payload;
  forged["sub"] = "someone-else@clients";
  const std::string forged_tok = tok.substr(0, tok.find('.')) + "." +
                                 ks::crypto::base64url_encode(forged.dump()) +
                                 tok.substr(tok.rfind('.'));
  auto r = call("GET", "/api/v2/clients", nullptr, forged_tok);
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(r.body.find("signature"), std::string::npos) << r.body;

  // The caller's tenant pin holds for a cached token.
  std::string error;
  ks::oidc::VerifyOptions pinned;
  pinned.tenant = "acme";
  EXPECT_FALSE(ks::oidc::verify_jwt(impl(), tok, &error, pinned));
  EXPECT_EQ(error, "Invalid token: issued by another tenant");
  EXPECT_EQ(cache.hits(), hits + 2);

  // And its expiry.
  clock_->advance(jws->payload["exp"].get<int64_t>() - clock_->now());
  r = call("GET", "/api/v2/clients", nullptr, tok);
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(r.body.find("Expired token"), std::string::npos) << r.body;
  EXPECT_EQ(cache.hits(), hits + 3);
  EXPECT_LE(cache.size(), ks::oidc::VerifiedTokens::kCapacity);
}

TEST_F(EngineTest, SigningKeyRotationAndRevocation) {
  auto tok = admin();
  const std::string old_kid = ks::crypto::jws_parse(tok)->header["kid"];
  auto keys = body(call("GET", "/api/v2/keys/signing", nullptr, tok));
  ASSERT_EQ(keys.size(), 2u);
  std::string next_kid;
  for (const auto& k : keys)
    if (k["next"] == true) next_kid = k["kid"];
  ASSERT_FALSE(next_kid.empty());
  auto rot = call("POST", "/api/v2/keys/signing/rotate", nullptr, tok);
  ASSERT_EQ(rot.status, 201) << rot.body;
  // The key that now signs was published before it signed.
  EXPECT_EQ(body(rot)["kid"], next_kid);
  auto tok2 = admin();
  EXPECT_EQ(ks::crypto::jws_parse(tok2)->header["kid"], next_kid);
  // The previous key still verifies its tokens, and JWKS shows previous, current and next.
  EXPECT_EQ(call("GET", "/api/v2/users", nullptr, tok).status, 200);
  EXPECT_EQ(body(call("GET", "/.well-known/jwks.json"))["keys"].size(), 3u);
  EXPECT_EQ(call("PUT", "/api/v2/keys/signing/" + next_kid + "/revoke", nullptr, tok2).status, 400);
  EXPECT_EQ(call("PUT", "/api/v2/keys/signing/nope/revoke", nullptr, tok2).status, 404);
  auto rev = call("PUT", "/api/v2/keys/signing/" + old_kid + "/revoke", nullptr, tok2);
  ASSERT_EQ(rev.status, 200) << rev.body;
  EXPECT_EQ(body(rev)["revoked"], true);
  EXPECT_EQ(call("GET", "/api/v2/users", nullptr, tok).status, 401);
  EXPECT_EQ(call("GET", "/api/v2/users", nullptr, tok2).status, 200);
  EXPECT_EQ(body(call("GET", "/.well-known/jwks.json"))["keys"].size(), 2u);
}

TEST_F(EngineTest, TenantSettingsOfTheCurrentTenant) {
  auto tok = admin();
  ASSERT_EQ(
      call("POST", "/api/v2/tenants", {{"id", "acme"}, {"friendly_name", "Acme"}}, tok).status,
      201);
  auto p =
      call("PATCH", "/t/acme/api/v2/tenants/settings",
           {{"friendly_name", "Acme Corp"}, {"default_audience", "urn:keystead:management"}}, tok);
  ASSERT_EQ(p.status, 200) << p.body;
  auto g = body(call("GET", "/t/acme/api/v2/tenants/settings", nullptr, tok));
  EXPECT_EQ(g["friendly_name"], "Acme Corp");
  EXPECT_EQ(g["default_audience"], "urn:keystead:management");
  EXPECT_EQ(body(call("GET", "/api/v2/tenants/acme", nullptr, tok))["friendly_name"], "Acme Corp");
  EXPECT_EQ(call("PATCH", "/t/acme/api/v2/tenants/settings", std::string("[1]"), tok).status, 400);
  EXPECT_EQ(call("PATCH", "/t/acme/api/v2/tenants/settings", {{"friendly_name", 5}}, tok).status,
            400);
}
