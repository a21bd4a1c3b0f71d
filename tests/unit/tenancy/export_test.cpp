// Export and import of a tenant (core/tenancy/export.h): a round trip through delete keeps
// users, passwords, clients, roles, organizations, sessions, refresh tokens and signing keys, in
// either placement; synced copies come back from the control plane; bad documents and taken
// names change nothing.
#include "core/tenancy/export.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <string>
#include <vector>

#include "core/crypto/crypto.h"
#include "core/engine_impl.h"
#include "core/http/form.h"
#include "tests/unit/support/engine_fixture.h"

using ks::test::header;
using ks::test::input_value;
using ks::test::query_of;
using ks::test::query_param;

namespace {

using ks::Json;
using ks::http::Response;

constexpr const char* kCallback = "https://acme.test/cb";
constexpr const char* kPassword = "a long enough password 1";

std::string verifier() { return std::string(43, 'v'); }

class ExportTest : public ks::test::EngineTest {
 protected:
  ks::EngineImpl& impl() { return engine_->impl(); }

  Response manage(const std::string& tenant, const std::string& method, const std::string& path,
                  const Json& b = nullptr, const std::string& query = "") {
    return engine_->manage(tenant, method, path, b, query);
  }

  Json ok(const Response& r, int status = 200) {
    EXPECT_EQ(r.status, status) << r.body;
    return r.body.empty() ? Json() : Json::parse(r.body);
  }

  // A tenant with something of everything: synced entities from the control plane, users with
  // passwords, an application, its own API, roles with permissions (its own and a synced one),
  // an organization with a member and member roles, and a signed-in browser.
  void populate(const std::string& isolation) {
    ok(manage("control_plane", "POST", "/resource-servers",
              {{"identifier", "https://platform.test"},
               {"name", "Platform"},
               {"scopes", {{{"value", "read:platform"}}}}}),
       201);
    Json support = ok(manage("control_plane", "POST", "/roles", {{"name", "Support"}}), 201);
    support_role_ = support["id"];
    ok(manage("control_plane", "POST", "/roles/" + support_role_ + "/permissions",
              {{"permissions",
                {{{"resource_server_identifier", "https://platform.test"},
                  {"permission_name", "read:platform"}}}}}),
       204);
    ok(manage("control_plane", "POST", "/tenants", {{"id", "acme"}, {"isolation", isolation}}),
       201);

    ok(manage("acme", "POST", "/clients",
              {{"client_id", "acme-app"},
               {"client_secret", "acme-app-secret"},
               {"name", "Acme app"},
               {"app_type", "regular_web"},
               {"callbacks", {kCallback}},
               {"grant_types", {"authorization_code", "refresh_token", "password"}}}),
       201);
    ok(manage("acme", "POST", "/resource-servers",
              {{"identifier", "https://api.acme.test"},
               {"name", "Acme API"},
               {"allow_offline_access", true},
               {"scopes", {{{"value", "read:things"}}, {{"value", "write:things"}}}}}),
       201);
    Json editor = ok(manage("acme", "POST", "/roles", {{"name", "Editor"}}), 201);
    editor_role_ = editor["id"];
    ok(manage("acme", "POST", "/roles/" + editor_role_ + "/permissions",
              {{"permissions",
                {{{"resource_server_identifier", "https://api.acme.test"},
                  {"permission_name", "write:things"}}}}}),
       204);
    for (const char* email : {"alice@example.com", "bob@example.com"}) {
      Json u = ok(manage("acme", "POST", "/users",
                         {{"email", email},
                          {"password", kPassword},
                          {"connection", "Username-Password-Authentication"}}),
                  201);
      users_.push_back(u["user_id"]);
    }
    ok(manage("acme", "POST", "/users/" + ks::http::url_encode(users_[0]) + "/roles",
              {{"roles", {editor_role_, support_role_}}}),
       204);
    Json org = ok(manage("acme", "POST", "/organizations", {{"name", "team"}}), 201);
    org_id_ = org["id"];
    ok(manage("acme", "POST", "/organizations/" + org_id_ + "/members", {{"members", {users_[1]}}}),
       204);
    ok(manage(
           "acme", "POST",
           "/organizations/" + org_id_ + "/members/" + ks::http::url_encode(users_[1]) + "/roles",
           {{"roles", {editor_role_}}}),
       204);
  }

  Response password_grant(const std::string& email, const std::string& password = kPassword) {
    return send("POST", "/t/acme/oauth/token",
                "grant_type=password&client_id=acme-app&client_secret=acme-app-secret"
                "&scope=openid%20offline_access&username=" +
                    ks::http::url_encode(email) + "&password=" + ks::http::url_encode(password));
  }

  Response refresh(const std::string& rt) {
    return send("POST", "/t/acme/oauth/token",
                "grant_type=refresh_token&client_id=acme-app&client_secret=acme-app-secret"
                "&refresh_token=" +
                    ks::http::url_encode(rt));
  }

  std::string authorize_url(const std::string& extra = "") {
    return "/t/acme/authorize?response_type=code&client_id=acme-app&redirect_uri=" +
           ks::http::url_encode(kCallback) + "&scope=openid&state=s1&nonce=n1&code_challenge=" +
           ks::crypto::base64url_encode(ks::crypto::sha256(verifier())) +
           "&code_challenge_method=S256" + extra;
  }

  // Signs alice in on the hosted login page: the browser (cookies_) then holds a session.
  void browser_login() {
    auto a = send("GET", authorize_url());
    ASSERT_EQ(a.status, 302) << a.body;
    const std::string loc(a.header("location"));
    ASSERT_TRUE(loc.starts_with("http://id.test/t/acme/u/login")) << loc;
    auto page = send("GET", loc.substr(std::string("http://id.test").size()));
    ASSERT_EQ(page.status, 200) << page.body;
    auto post =
        send("POST", "/t/acme/u/login",
             "state=" + ks::http::url_encode(input_value(page.body, "state")) +
                 "&_csrf=" + ks::http::url_encode(input_value(page.body, "_csrf")) +
                 "&username=alice%40example.com&password=" + ks::http::url_encode(kPassword));
    ASSERT_EQ(post.status, 302) << post.body;
    ASSERT_FALSE(query_param(std::string(post.header("location")), "code").empty());
  }

  // prompt=none succeeds only with a live session.
  bool silently_signed_in() {
    auto a = send("GET", authorize_url("&prompt=none"));
    return a.status == 302 && !query_param(std::string(a.header("location")), "code").empty();
  }

  std::set<std::string> jwks_kids() {
    auto r = send("GET", "/t/acme/.well-known/jwks.json");
    EXPECT_EQ(r.status, 200);
    std::set<std::string> kids;
    const Json jwks = Json::parse(r.body);
    for (const auto& k : jwks["keys"]) kids.insert(k["kid"].get<std::string>());
    return kids;
  }

  static std::string kid_of(const std::string& jwt) {
    auto parsed = ks::crypto::jws_parse(jwt);
    return parsed ? parsed->header.value("kid", "") : "";
  }

  Json export_doc(const std::string& id = "acme") {
    return ok(manage("control_plane", "GET", "/tenants/" + id + "/export"));
  }

  // Kinds of the records of a stored tenant (straight from the store).
  std::multiset<std::string> stored_kinds(const std::string& tenant) {
    std::multiset<std::string> out;
    impl().store().read(tenant, [&](ks::store::Tx& tx) {
      tx.for_each_record([&](const ks::store::RecordEntry& e) { out.insert(e.kind); });
    });
    return out;
  }

  size_t stored_rows(const std::string& tenant) {
    size_t n = 0;
    impl().store().read(tenant, [&](ks::store::Tx& tx) {
      tx.for_each_record([&](const ks::store::RecordEntry&) { ++n; });
      tx.for_each_link([&](const ks::store::LinkEntry&) { ++n; });
    });
    return n;
  }

  // Nothing of tenant `id` anywhere: no record, no organization, no data, no registration.
  void expect_nothing_of(const std::string& id) {
    EXPECT_EQ(manage("control_plane", "GET", "/tenants/" + id).status, 404);
    EXPECT_EQ(manage("control_plane", "GET", "/organizations/name/" + id).status, 404);
    EXPECT_EQ(stored_rows(id), 0u);
    EXPECT_EQ(impl().store().isolation(id), ks::store::Isolation::Shared);
  }

  std::string support_role_, editor_role_, org_id_;
  std::vector<std::string> users_;
};

// The tenant record as compared across a round trip (an import is an update of it).
Json comparable_tenant(Json t) {
  t.erase("updated_at");
  t.erase("isolation");
  return t;
}

struct Placement {
  const char* created;   // isolation of the exported tenant
  const char* imported;  // "" = as exported
};

class RoundTrip : public ExportTest, public ::testing::WithParamInterface<Placement> {};

INSTANTIATE_TEST_SUITE_P(Placements, RoundTrip,
                         ::testing::Values(Placement{"shared", ""}, Placement{"shared", "database"},
                                           Placement{"database", ""},
                                           Placement{"database", "shared"}),
                         [](const auto& info) {
                           return std::string(info.param.created) + "_to_" +
                                  (*info.param.imported ? info.param.imported : "same");
                         });

TEST_P(RoundTrip, DeleteThenImportRestoresEverything) {
  populate(GetParam().created);
  Json tokens = ok(password_grant("alice@example.com"));
  ASSERT_TRUE(tokens.contains("refresh_token")) << tokens;
  const std::string kid = kid_of(tokens["access_token"]);
  ASSERT_FALSE(kid.empty());
  const auto kids = jwks_kids();
  browser_login();
  ASSERT_TRUE(silently_signed_in());
  // A code and a login transaction in flight: transient, not exported.
  ASSERT_EQ(send("GET", authorize_url()).status, 302);

  const Json doc = export_doc();
  EXPECT_EQ(doc["format"], "keystead-tenant-export");
  EXPECT_EQ(doc["version"], 1);
  EXPECT_TRUE(doc["exported_at"].is_string());
  EXPECT_EQ(doc["tenant"]["id"], "acme");
  EXPECT_EQ(doc["tenant"]["isolation"], GetParam().created);
  EXPECT_EQ(doc["organization"]["name"], "acme");
  EXPECT_EQ(doc["organization"]["id"], doc["tenant"]["organization_id"]);
  std::set<std::string> kinds;
  for (const auto& r : doc["records"]) {
    kinds.insert(r["kind"].get<std::string>());
    EXPECT_FALSE(r["data"].is_object() && r["data"].value("_synced", false)) << r.dump();
    EXPECT_NE(r["id"], support_role_);
  }
  for (const char* k : {"user", "client", "client_grant", "connection", "resource_server", "role",
                        "signing_key", "session", "refresh_token", "organization", "log"})
    EXPECT_TRUE(kinds.count(k)) << "no " << k << " exported";
  for (const char* k : {"auth_code", "login_tx"}) EXPECT_FALSE(kinds.count(k)) << k;
  bool user_keyed = false;
  for (const auto& r : doc["records"])
    if (r["kind"] == "user" && r["key"].is_string()) user_keyed = true;
  EXPECT_TRUE(user_keyed) << "unique keys are exported";
  for (const auto& l : doc["links"])
    EXPECT_FALSE(l["rel"] == "role_permission" && l["from"] == support_role_) << l.dump();

  ok(manage("control_plane", "DELETE", "/tenants/acme"), 204);
  expect_nothing_of("acme");
  EXPECT_EQ(refresh(tokens["refresh_token"]).status, 404);

  const std::string query =
      *GetParam().imported ? "isolation=" + std::string(GetParam().imported) : std::string();
  Json view = ok(manage("control_plane", "POST", "/tenants/import", doc, query), 201);
  const std::string expected_isolation =
      *GetParam().imported ? GetParam().imported : GetParam().created;
  EXPECT_EQ(view["id"], "acme");
  EXPECT_EQ(view["isolation"], expected_isolation);
  EXPECT_EQ(view["status"], "active");
  EXPECT_EQ(impl().store().isolation("acme"), *ks::store::parse_isolation(expected_isolation));

  // Everything equal: exporting again gives the same document.
  const Json again = export_doc();
  EXPECT_EQ(comparable_tenant(again["tenant"]), comparable_tenant(doc["tenant"]));
  EXPECT_EQ(again["organization"], doc["organization"]);
  EXPECT_EQ(again["records"], doc["records"]);
  EXPECT_EQ(again["links"], doc["links"]);

  // Synced copies are back, from the control plane.
  Json support = ok(manage("acme", "GET", "/roles/" + support_role_));
  EXPECT_EQ(support["is_system"], true);
  EXPECT_EQ(ok(manage("acme", "GET", "/roles/" + support_role_ + "/permissions")).size(), 1u);
  Json alice_roles =
      ok(manage("acme", "GET", "/users/" + ks::http::url_encode(users_[0]) + "/roles"));
  EXPECT_EQ(alice_roles.size(), 2u);
  EXPECT_EQ(ok(manage("acme", "GET", "/organizations/" + org_id_ + "/members")).size(), 1u);

  // Users sign in with their passwords; tokens issued before still work; same keys.
  EXPECT_EQ(jwks_kids(), kids);
  Json fresh = ok(password_grant("bob@example.com"));
  EXPECT_EQ(kid_of(fresh["access_token"]), kid);
  EXPECT_EQ(password_grant("bob@example.com", "wrong password 1").status, 403);
  Json refreshed = ok(refresh(tokens["refresh_token"]));
  EXPECT_EQ(kid_of(refreshed["access_token"]), kid);
  EXPECT_TRUE(silently_signed_in());
}

TEST_F(ExportTest, SyncedCopiesAreNotExportedButComeBack) {
  populate("shared");
  const Json doc = export_doc();
  std::set<std::string> rs;
  for (const auto& r : doc["records"])
    if (r["kind"] == "resource_server") rs.insert(r["data"]["identifier"].get<std::string>());
  EXPECT_FALSE(rs.count("https://platform.test"));
  EXPECT_TRUE(rs.count("https://api.acme.test"));

  ok(manage("control_plane", "DELETE", "/tenants/acme"), 204);
  // The control plane changed meanwhile: the import takes the entities as they are now.
  ok(manage("control_plane", "POST", "/roles", {{"name", "Auditor"}}), 201);
  ok(manage("control_plane", "POST", "/tenants/import", doc), 201);
  std::set<std::string> roles;
  for (const auto& r : ok(manage("acme", "GET", "/roles")))
    roles.insert(r["name"].get<std::string>());
  EXPECT_EQ(roles, (std::set<std::string>{"Support", "Editor", "Auditor"}));
  Json platform;
  for (const auto& r : ok(manage("acme", "GET", "/resource-servers")))
    if (r["identifier"] == "https://platform.test") platform = r;
  ASSERT_TRUE(platform.is_object());
  EXPECT_EQ(platform["is_system"], true);
}

TEST_F(ExportTest, StatusCanBeSetOnImport) {
  populate("shared");
  ok(manage("control_plane", "POST", "/tenants/acme/suspend"));
  Json doc = export_doc();
  EXPECT_EQ(doc["tenant"]["status"], "suspended");
  ok(manage("control_plane", "DELETE", "/tenants/acme"), 204);
  EXPECT_EQ(ok(manage("control_plane", "POST", "/tenants/import", doc), 201)["status"],
            "suspended");
  EXPECT_EQ(password_grant("alice@example.com").status, 403);
  ok(manage("control_plane", "DELETE", "/tenants/acme"), 204);
  EXPECT_EQ(
      ok(manage("control_plane", "POST", "/tenants/import", doc, "status=active"), 201)["status"],
      "active");
  ok(password_grant("alice@example.com"));
}

TEST_F(ExportTest, BadDocumentsAre400AndCreateNothing) {
  populate("shared");
  const Json good = export_doc();
  ok(manage("control_plane", "DELETE", "/tenants/acme"), 204);

  auto with = [&](const std::function<void(Json&)>& change) {
    Json d = good;
    change(d);
    return d;
  };
  const Json duplicate = with([](Json& d) { d["records"].push_back(d["records"][0]); });
  const std::vector<std::pair<std::string, Json>> cases = {
      {"not an object", Json::array()},
      {"no format", with([](Json& d) { d.erase("format"); })},
      {"other format", with([](Json& d) { d["format"] = "something-else"; })},
      {"version 2", with([](Json& d) { d["version"] = 2; })},
      {"version string", with([](Json& d) { d["version"] = "1"; })},
      {"no tenant", with([](Json& d) { d.erase("tenant"); })},
      {"tenant not object", with([](Json& d) { d["tenant"] = "acme"; })},
      {"bad id", with([](Json& d) { d["tenant"]["id"] = "Bad Id!"; })},
      {"control plane", with([](Json& d) { d["tenant"]["id"] = "control_plane"; })},
      {"bad status", with([](Json& d) { d["tenant"]["status"] = "gone"; })},
      {"bad isolation", with([](Json& d) { d["tenant"]["isolation"] = "elsewhere"; })},
      {"bad domains", with([](Json& d) { d["tenant"]["custom_domains"] = {1}; })},
      {"org of another name", with([](Json& d) { d["organization"]["name"] = "other"; })},
      {"no records", with([](Json& d) { d.erase("records"); })},
      {"records not array", with([](Json& d) { d["records"] = Json::object(); })},
      {"record without kind", with([](Json& d) { d["records"][0].erase("kind"); })},
      {"record with empty id", with([](Json& d) { d["records"][0]["id"] = ""; })},
      {"record key number", with([](Json& d) { d["records"][0]["key"] = 5; })},
      {"record without data", with([](Json& d) { d["records"][0].erase("data"); })},
      {"links not array", with([](Json& d) { d["links"] = nullptr; })},
      {"link without from", with([](Json& d) { d["links"][0].erase("from"); })},
      {"link rel number", with([](Json& d) { d["links"][0]["rel"] = 1; })},
      {"duplicate record", duplicate},
  };
  for (const auto& [name, doc] : cases) {
    auto r = manage("control_plane", "POST", "/tenants/import", doc);
    EXPECT_EQ(r.status, 400) << name << ": " << r.body;
    EXPECT_FALSE(Json::parse(r.body).value("message", "").empty()) << name;
    expect_nothing_of("acme");
  }
  EXPECT_EQ(manage("control_plane", "POST", "/tenants/import", good, "isolation=nowhere").status,
            400);
  EXPECT_EQ(manage("control_plane", "POST", "/tenants/import", good, "status=gone").status, 400);
  expect_nothing_of("acme");
  // The same document, well formed, imports.
  ok(manage("control_plane", "POST", "/tenants/import", good), 201);
}

TEST_F(ExportTest, TakenNamesAre409AndChangeNothing) {
  populate("database");
  const Json doc = export_doc();
  // The tenant exists: refused, and it keeps everything.
  auto r = manage("control_plane", "POST", "/tenants/import", doc);
  EXPECT_EQ(r.status, 409) << r.body;
  const Json after = export_doc();
  EXPECT_EQ(after["records"], doc["records"]);
  EXPECT_EQ(after["links"], doc["links"]);
  EXPECT_EQ(after["tenant"], doc["tenant"]);
  ok(password_grant("alice@example.com"));

  ok(manage("control_plane", "DELETE", "/tenants/acme"), 204);
  // Its organization's name is taken on the control plane.
  Json squatter = ok(manage("control_plane", "POST", "/organizations", {{"name", "acme"}}), 201);
  r = manage("control_plane", "POST", "/tenants/import", doc);
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_EQ(manage("control_plane", "GET", "/tenants/acme").status, 404);
  EXPECT_EQ(stored_rows("acme"), 0u);
  ok(manage("control_plane", "DELETE", "/organizations/" + squatter["id"].get<std::string>()), 204);

  // One of its custom domains is another tenant's now.
  Json with_domain = doc;
  with_domain["tenant"]["custom_domains"] = {"login.acme.test"};
  ok(manage("control_plane", "POST", "/tenants",
            {{"id", "other"}, {"custom_domains", {"login.acme.test"}}}),
     201);
  r = manage("control_plane", "POST", "/tenants/import", with_domain);
  EXPECT_EQ(r.status, 409) << r.body;
  expect_nothing_of("acme");
  ok(manage("control_plane", "DELETE", "/tenants/other"), 204);
  Json view = ok(manage("control_plane", "POST", "/tenants/import", with_domain), 201);
  EXPECT_EQ(view["custom_domains"], Json({"login.acme.test"}));
  EXPECT_EQ(impl().tenants().tenant_of_domain("login.acme.test"), "acme");
}

TEST_F(ExportTest, ControlPlaneAndUnknownTenants) {
  EXPECT_EQ(manage("control_plane", "GET", "/tenants/control_plane/export").status, 403);
  EXPECT_EQ(manage("control_plane", "GET", "/tenants/nobody/export").status, 404);
  EXPECT_THROW(ks::tenancy::export_tenant(impl(), "nobody"), ks::http::HttpError);
  // The routes live on the control plane only.
  ok(manage("control_plane", "POST", "/tenants", {{"id", "acme"}}), 201);
  EXPECT_EQ(manage("acme", "GET", "/tenants/acme/export").status, 404);
}

TEST_F(ExportTest, OnlyPlatformStaffMayExportOrImport) {
  ok(manage("control_plane", "POST", "/tenants", {{"id", "acme"}}), 201);
  const Json doc = export_doc();
  // The platform admin (admin:organizations) may.
  const std::string staff = admin();
  EXPECT_EQ(call("GET", "/api/v2/tenants/acme/export", nullptr, staff).status, 200);
  // A control-plane client with every tenants scope but not admin:organizations may not.
  ok(manage("control_plane", "POST", "/clients",
            {{"client_id", "ops"},
             {"client_secret", "ops-secret-0123456789"},
             {"name", "ops"},
             {"app_type", "non_interactive"},
             {"grant_types", {"client_credentials"}}}),
     201);
  ok(manage("control_plane", "POST", "/client-grants",
            {{"client_id", "ops"},
             {"audience", "urn:keystead:management"},
             {"scope", {"read:tenants", "create:tenants"}}}),
     201);
  const std::string ops = token("", "ops", "ops-secret-0123456789");
  EXPECT_EQ(call("GET", "/api/v2/tenants/acme/export", nullptr, ops).status, 403);
  EXPECT_EQ(call("POST", "/api/v2/tenants/import", doc, ops).status, 403);
  EXPECT_EQ(call("GET", "/api/v2/tenants/acme/export").status, 401);
  EXPECT_EQ(manage("control_plane", "GET", "/tenants/acme").status, 200);
}

}  // namespace
