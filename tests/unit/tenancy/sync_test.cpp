// Entity sync (DESIGN.md "Entity sync"): resource servers, roles and role permissions written on
// the control plane reach every child tenant, through Engine::handle as the server drives it.
#include "core/tenancy/sync.h"

#include <gtest/gtest.h>

#include <optional>
#include <set>
#include <string>

#include "core/engine_impl.h"
#include "core/http/form.h"
#include "core/tenancy/tenants.h"
#include "tests/unit/support/engine_fixture.h"
#include "tests/unit/support/fake_hooks.h"

namespace {

using ks::Json;
using ks::http::Response;

const std::string kRsMessage =
    "This resource server is a system resource and cannot be modified. Make changes in the "
    "control plane instead.";
const std::string kRoleMessage =
    "This role is a system resource and cannot be modified. Make changes in the control plane "
    "instead.";

Json perms(const std::string& identifier, std::initializer_list<const char*> names) {
  Json list = Json::array();
  for (const char* n : names)
    list.push_back({{"resource_server_identifier", identifier}, {"permission_name", n}});
  return {{"permissions", list}};
}

class SyncTest : public ks::test::EngineTest {
 protected:
  void SetUp() override {
    EngineTest::SetUp();
    tok_ = admin();
  }

  // A Management API call on `tenant` ("" = the control plane) with the platform admin token.
  Response api(const std::string& method, const std::string& tenant, const std::string& path,
               const Json& b = nullptr) {
    return call(method, (tenant.empty() ? "" : "/t/" + tenant) + "/api/v2" + path, b, tok_);
  }

  void make_tenant(const std::string& id) {
    auto r = api("POST", "", "/tenants", {{"id", id}});
    ASSERT_EQ(r.status, 201) << r.body;
  }

  Json create_rs(const std::string& identifier, const Json& extra = Json::object()) {
    Json b = {{"identifier", identifier},
              {"name", "API " + identifier},
              {"scopes",
               {{{"value", "read:things"}, {"description", "Read things"}},
                {{"value", "write:things"}, {"description", "Write things"}}}}};
    b.update(extra);
    auto r = api("POST", "", "/resource-servers", b);
    EXPECT_EQ(r.status, 201) << r.body;
    return body(r);
  }

  Json create_role(const std::string& name, const Json& extra = Json::object()) {
    Json b = {{"name", name}, {"description", "Role " + name}};
    b.update(extra);
    auto r = api("POST", "", "/roles", b);
    EXPECT_EQ(r.status, 201) << r.body;
    return body(r);
  }

  // Read straight from the store: works for suspended tenants too.
  std::optional<Json> stored(const std::string& tenant, std::string_view kind,
                             const std::string& id) {
    std::optional<Json> out;
    impl().store().read(tenant, [&](ks::store::Tx& tx) {
      if (auto r = tx.get(kind, id)) out = r->data;
    });
    return out;
  }

  std::set<std::string> links_from(const std::string& tenant, std::string_view rel,
                                   const std::string& from) {
    std::set<std::string> out;
    impl().store().read(tenant, [&](ks::store::Tx& tx) {
      for (const auto& l : tx.links_from(rel, from, ks::store::ListQuery::first(1000)))
        out.insert(l.to);
    });
    return out;
  }

  size_t count(const std::string& tenant, std::string_view kind) {
    size_t n = 0;
    impl().store().read(tenant, [&](ks::store::Tx& tx) { n = tx.count(kind); });
    return n;
  }

  void patch_cp_settings(const Json& settings) {
    auto r = api("PATCH", "", "/tenants/settings", settings);
    ASSERT_EQ(r.status, 200) << r.body;
  }

  static std::string key(const std::string& identifier, const std::string& perm) {
    return identifier + "\n" + perm;
  }

  std::string tok_;
};

// --- resource servers ---------------------------------------------------------------------------

TEST_F(SyncTest, ResourceServerCreateUpdateDeleteReachEveryChildSuspendedIncluded) {
  make_tenant("a");
  make_tenant("b");
  ASSERT_EQ(api("POST", "", "/tenants/b/suspend").status, 200);

  Json rs = create_rs("https://api.platform.test", {{"token_lifetime", 600}});
  const std::string id = rs["id"];
  EXPECT_EQ(rs["is_system"], false);
  for (const char* t : {"a", "b"}) {
    auto copy = stored(t, "resource_server", id);
    ASSERT_TRUE(copy) << t;
    EXPECT_EQ((*copy)["is_system"], true);
    EXPECT_EQ((*copy)["identifier"], "https://api.platform.test");
    EXPECT_EQ((*copy)["scopes"], rs["scopes"]);
    EXPECT_EQ((*copy)["token_lifetime"], 600);
  }
  // The management API shows the copy with the control plane's id, and is_system.
  auto shown = api("GET", "a", "/resource-servers/" + id);
  ASSERT_EQ(shown.status, 200);
  EXPECT_EQ(body(shown)["id"], id);
  EXPECT_EQ(body(shown)["is_system"], true);
  EXPECT_FALSE(body(shown).contains("_synced"));
  // The original stays an ordinary resource server.
  EXPECT_EQ(body(api("GET", "", "/resource-servers/" + id))["is_system"], false);

  auto p = api("PATCH", "", "/resource-servers/" + id,
               {{"name", "Renamed"},
                {"scopes", {{{"value", "admin:things"}, {"description", "Admin"}}}},
                {"allow_offline_access", true}});
  ASSERT_EQ(p.status, 200) << p.body;
  for (const char* t : {"a", "b"}) {
    auto copy = stored(t, "resource_server", id);
    ASSERT_TRUE(copy);
    EXPECT_EQ((*copy)["name"], "Renamed");
    EXPECT_EQ((*copy)["allow_offline_access"], true);
    ASSERT_EQ((*copy)["scopes"].size(), 1u);
    EXPECT_EQ((*copy)["scopes"][0]["value"], "admin:things");
    EXPECT_EQ((*copy)["is_system"], true);
  }

  ASSERT_EQ(api("DELETE", "", "/resource-servers/" + id).status, 204);
  for (const char* t : {"a", "b"}) EXPECT_FALSE(stored(t, "resource_server", id)) << t;
  EXPECT_EQ(api("GET", "a", "/resource-servers/" + id).status, 404);
}

TEST_F(SyncTest, DeletingOnTheControlPlaneRemovesTheChildsGrantsForIt) {
  make_tenant("a");
  const std::string id = create_rs("https://api.grants.test")["id"];
  auto client =
      body(api("POST", "a", "/clients", {{"name", "m2m"}, {"app_type", "non_interactive"}}));
  auto g = api("POST", "a", "/client-grants",
               {{"client_id", client["client_id"]},
                {"audience", "https://api.grants.test"},
                {"scope", {"read:things"}}});
  ASSERT_EQ(g.status, 201) << g.body;
  // The copy is usable on the child: its client gets tokens for the synced API.
  EXPECT_FALSE(
      token("/t/a", client["client_id"], client["client_secret"], "https://api.grants.test")
          .empty());
  ASSERT_EQ(api("DELETE", "", "/resource-servers/" + id).status, 204);
  EXPECT_EQ(api("GET", "a", "/client-grants/" + body(g)["id"].get<std::string>()).status, 404);
}

TEST_F(SyncTest, TheManagementApiIsNeverSynced) {
  make_tenant("a");
  std::string cp_mgmt, a_mgmt;
  for (const auto& rs : body(api("GET", "", "/resource-servers")))
    if (rs["identifier"] == "urn:keystead:management") cp_mgmt = rs["id"];
  for (const auto& rs : body(api("GET", "a", "/resource-servers")))
    if (rs["identifier"] == "urn:keystead:management") a_mgmt = rs["id"];
  ASSERT_FALSE(cp_mgmt.empty());
  ASSERT_FALSE(a_mgmt.empty());
  EXPECT_NE(cp_mgmt, a_mgmt);
  EXPECT_FALSE(stored("a", "resource_server", cp_mgmt));
  // A full resync leaves the child's own management API alone.
  impl().store().write("control_plane", [&](ks::store::Tx& cp) { impl().sync().resync_all(cp); });
  EXPECT_TRUE(stored("a", "resource_server", a_mgmt));
  EXPECT_FALSE(stored("a", "resource_server", cp_mgmt));
}

// --- roles and permissions -----------------------------------------------------------------------

TEST_F(SyncTest, OversizePermissionChangeIsRefusedAndChangesNothing) {
  make_tenant("a");
  const std::string api_id = "https://api.big.test";
  create_rs(api_id);
  const std::string rid = create_role("big")["id"];
  Json many = Json::array();
  for (int i = 0; i < 1001; ++i)
    many.push_back({{"resource_server_identifier", api_id}, {"permission_name", "read:things"}});
  auto r = api("POST", "", "/roles/" + rid + "/permissions", {{"permissions", many}});
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(body(r)["message"].get<std::string>().find("maximum 1000"), std::string::npos);
  EXPECT_TRUE(links_from("control_plane", "role_permission", rid).empty());
  EXPECT_TRUE(links_from("a", "role_permission", rid).empty());
}

TEST_F(SyncTest, RolesAndTheirPermissionsReachEveryChild) {
  make_tenant("a");
  make_tenant("b");
  ASSERT_EQ(api("POST", "", "/tenants/b/suspend").status, 200);
  const std::string api_id = "https://api.roles.test";
  create_rs(api_id);
  Json role = create_role("editor", {{"metadata", {{"team", "core"}}}});
  const std::string rid = role["id"];
  EXPECT_EQ(role["is_system"], false);
  EXPECT_EQ(role["metadata"]["team"], "core");
  for (const char* t : {"a", "b"}) {
    auto copy = stored(t, "role", rid);
    ASSERT_TRUE(copy) << t;
    EXPECT_EQ((*copy)["name"], "editor");
    EXPECT_EQ((*copy)["is_system"], true);
    EXPECT_EQ((*copy)["metadata"]["team"], "core");
  }

  ASSERT_EQ(api("POST", "", "/roles/" + rid + "/permissions",
                perms(api_id, {"read:things", "write:things"}))
                .status,
            204);
  for (const char* t : {"a", "b"})
    EXPECT_EQ(links_from(t, "role_permission", rid),
              (std::set<std::string>{key(api_id, "read:things"), key(api_id, "write:things")}))
        << t;
  auto shown = body(api("GET", "a", "/roles/" + rid + "/permissions"));
  ASSERT_EQ(shown.size(), 2u);
  EXPECT_EQ(shown[0]["resource_server_name"], "API " + api_id);

  ASSERT_EQ(
      api("DELETE", "", "/roles/" + rid + "/permissions", perms(api_id, {"write:things"})).status,
      204);
  for (const char* t : {"a", "b"})
    EXPECT_EQ(links_from(t, "role_permission", rid),
              std::set<std::string>{key(api_id, "read:things")});

  ASSERT_EQ(
      api("PATCH", "", "/roles/" + rid, {{"name", "writer"}, {"description", "Writes"}}).status,
      200);
  for (const char* t : {"a", "b"}) {
    EXPECT_EQ((*stored(t, "role", rid))["name"], "writer");
    EXPECT_EQ((*stored(t, "role", rid))["description"], "Writes");
  }
  // The rename frees the old name on the child and takes the new one.
  EXPECT_EQ(api("POST", "a", "/roles", {{"name", "editor"}}).status, 201);
  EXPECT_EQ(api("POST", "a", "/roles", {{"name", "writer"}}).status, 409);
}

TEST_F(SyncTest, DeletingARoleRemovesTheCopiesAndTheirAssignments) {
  make_tenant("a");
  const std::string api_id = "https://api.del.test";
  create_rs(api_id);
  const std::string rid = create_role("viewer")["id"];
  ASSERT_EQ(
      api("POST", "", "/roles/" + rid + "/permissions", perms(api_id, {"read:things"})).status,
      204);
  // Assigning a synced role on the child is using it, not modifying it: allowed everywhere.
  auto u = api("POST", "a", "/users",
               {{"email", "ann@example.com"},
                {"password", "correct horse battery"},
                {"connection", "Username-Password-Authentication"}});
  ASSERT_EQ(u.status, 201) << u.body;
  const std::string uid = body(u)["user_id"];
  const std::string uenc = ks::http::url_encode(uid);
  auto u2 = api("POST", "a", "/users",
                {{"email", "bob@example.com"},
                 {"password", "correct horse battery"},
                 {"connection", "Username-Password-Authentication"}});
  const std::string uid2 = body(u2)["user_id"];
  EXPECT_EQ(api("POST", "a", "/users/" + uenc + "/roles", {{"roles", {rid}}}).status, 204);
  EXPECT_EQ(api("POST", "a", "/roles/" + rid + "/users", {{"users", {uid2}}}).status, 204);
  const std::string oid = body(api("POST", "a", "/organizations", {{"name", "east"}}))["id"];
  ASSERT_EQ(api("POST", "a", "/organizations/" + oid + "/members", {{"members", {uid}}}).status,
            204);
  EXPECT_EQ(
      api("POST", "a", "/organizations/" + oid + "/members/" + uenc + "/roles", {{"roles", {rid}}})
          .status,
      204);
  EXPECT_EQ(body(api("GET", "a", "/roles/" + rid + "/users")).size(), 2u);
  auto member_roles =
      body(api("GET", "a", "/organizations/" + oid + "/members/" + uenc + "/roles"));
  ASSERT_EQ(member_roles.size(), 1u);
  // Unassigning is allowed too.
  EXPECT_EQ(
      api("DELETE", "a", "/users/" + ks::http::url_encode(uid2) + "/roles", {{"roles", {rid}}})
          .status,
      204);
  EXPECT_EQ(api("POST", "a", "/users/" + ks::http::url_encode(uid2) + "/roles", {{"roles", {rid}}})
                .status,
            204);

  ASSERT_EQ(api("DELETE", "", "/roles/" + rid).status, 204);
  EXPECT_FALSE(stored("a", "role", rid));
  EXPECT_TRUE(links_from("a", "role_permission", rid).empty());
  EXPECT_TRUE(links_from("a", "user_role", uid).empty());
  EXPECT_TRUE(links_from("a", "user_role", uid2).empty());
  EXPECT_TRUE(links_from("a", "org_member_role", oid + "\n" + uid).empty());
  EXPECT_EQ(body(api("GET", "a", "/users/" + uenc + "/roles")).size(), 0u);
  // The users themselves stay.
  EXPECT_EQ(api("GET", "a", "/users/" + uenc).status, 200);
}

TEST_F(SyncTest, APermissionIsCopiedOnlyWhereItsResourceServerIs) {
  make_tenant("a");
  const std::string shared = "https://api.shared.test", hidden = "https://api.hidden.test";
  create_rs(shared);
  const std::string hidden_id = create_rs(hidden, {{"metadata", {{"sync", false}}}})["id"];
  const std::string rid = create_role("mixed")["id"];
  ASSERT_EQ(
      api("POST", "", "/roles/" + rid + "/permissions", perms(shared, {"read:things"})).status,
      204);
  ASSERT_EQ(
      api("POST", "", "/roles/" + rid + "/permissions", perms(hidden, {"read:things"})).status,
      204);
  EXPECT_EQ(links_from("a", "role_permission", rid),
            std::set<std::string>{key(shared, "read:things")});

  // The resource server becomes synced: the permission follows it to the child.
  ASSERT_EQ(
      api("PATCH", "", "/resource-servers/" + hidden_id, {{"metadata", Json::object()}}).status,
      200);
  EXPECT_EQ(links_from("a", "role_permission", rid),
            (std::set<std::string>{key(shared, "read:things"), key(hidden, "read:things")}));
  // And back: the copy and the permission leave the child, the control plane keeps both.
  ASSERT_EQ(
      api("PATCH", "", "/resource-servers/" + hidden_id, {{"metadata", {{"sync", false}}}}).status,
      200);
  EXPECT_FALSE(stored("a", "resource_server", hidden_id));
  EXPECT_EQ(links_from("a", "role_permission", rid),
            std::set<std::string>{key(shared, "read:things")});
  EXPECT_EQ(links_from("control_plane", "role_permission", rid).size(), 2u);
}

TEST_F(SyncTest, TenantAdminRoleStaysOnTheControlPlane) {
  // "Tenant Admin" grants management of one tenant through a control-plane organization; a
  // child has no use for it, so it is created with metadata.sync = false.
  make_tenant("a");
  std::string admin_role;
  for (const auto& r : body(api("GET", "", "/roles")))
    if (r["name"] == "Tenant Admin") admin_role = r["id"];
  ASSERT_FALSE(admin_role.empty());
  EXPECT_GT(links_from("control_plane", "role_permission", admin_role).size(), 10u);
  impl().store().write("control_plane", [&](ks::store::Tx& cp) { impl().sync().resync_all(cp); });
  EXPECT_FALSE(stored("a", "role", admin_role));
  EXPECT_TRUE(links_from("a", "role_permission", admin_role).empty());
}

// --- new tenants (needs SyncService::copy_all_to in TenantService::create) -----------------------

TEST_F(SyncTest, NewTenantGetsEverySyncedEntity) {
  const std::string api_id = "https://api.early.test";
  const std::string rs_id = create_rs(api_id)["id"];
  const std::string rid = create_role("early")["id"];
  ASSERT_EQ(
      api("POST", "", "/roles/" + rid + "/permissions", perms(api_id, {"read:things"})).status,
      204);
  const std::string off_rs =
      create_rs("https://api.off.test", {{"metadata", {{"sync", false}}}})["id"];
  const std::string off_role = create_role("internal:ops")["id"];

  make_tenant("late");
  auto rs = stored("late", "resource_server", rs_id);
  ASSERT_TRUE(rs);
  EXPECT_EQ((*rs)["is_system"], true);
  auto role = stored("late", "role", rid);
  ASSERT_TRUE(role);
  EXPECT_EQ((*role)["is_system"], true);
  EXPECT_EQ(links_from("late", "role_permission", rid),
            std::set<std::string>{key(api_id, "read:things")});
  EXPECT_FALSE(stored("late", "resource_server", off_rs));
  EXPECT_FALSE(stored("late", "role", off_role));
  // Still provisioned with its own management API.
  bool own_mgmt = false;
  for (const auto& r : body(api("GET", "late", "/resource-servers")))
    own_mgmt = own_mgmt || (r["identifier"] == "urn:keystead:management");
  EXPECT_TRUE(own_mgmt);
  EXPECT_EQ(api("PATCH", "late", "/roles/" + rid, {{"description", "x"}}).status, 403);
}

TEST_F(SyncTest, NewTenantHonoursTheTypeSwitches) {
  const std::string rs_id = create_rs("https://api.sw.test")["id"];
  const std::string rid = create_role("switched")["id"];
  patch_cp_settings({{"sync", {{"roles", false}}}});
  make_tenant("n1");
  EXPECT_TRUE(stored("n1", "resource_server", rs_id));
  EXPECT_FALSE(stored("n1", "role", rid));
  patch_cp_settings({{"sync", {{"roles", true}, {"resource_servers", false}}}});
  make_tenant("n2");
  EXPECT_FALSE(stored("n2", "resource_server", rs_id));
  EXPECT_TRUE(stored("n2", "role", rid));
}

// --- filters -------------------------------------------------------------------------------------

TEST_F(SyncTest, FilteredEntitiesStayOnTheControlPlane) {
  make_tenant("a");
  const std::string no_sync =
      create_rs("https://api.nosync.test", {{"metadata", {{"sync", false}}}})["id"];
  const std::string no_sync_str =
      create_rs("https://api.nosync-str.test", {{"metadata", {{"sync", "false"}}}})["id"];
  const std::string internal =
      create_rs("https://api.internal.test", {{"metadata", {{"internal", true}}}})["id"];
  const std::string prefixed = create_rs("internal:billing")["id"];
  const std::string synced =
      create_rs("https://api.synced.test", {{"metadata", {{"sync", true}}}})["id"];
  EXPECT_FALSE(stored("a", "resource_server", no_sync));
  EXPECT_FALSE(stored("a", "resource_server", no_sync_str));
  EXPECT_FALSE(stored("a", "resource_server", internal));
  EXPECT_FALSE(stored("a", "resource_server", prefixed));
  EXPECT_TRUE(stored("a", "resource_server", synced));

  const std::string r_no_sync = create_role("quiet", {{"metadata", {{"sync", false}}}})["id"];
  const std::string r_internal = create_role("staff", {{"metadata", {{"internal", true}}}})["id"];
  const std::string r_prefixed = create_role("internal:support")["id"];
  const std::string r_synced = create_role("loud")["id"];
  EXPECT_FALSE(stored("a", "role", r_no_sync));
  EXPECT_FALSE(stored("a", "role", r_internal));
  EXPECT_FALSE(stored("a", "role", r_prefixed));
  EXPECT_TRUE(stored("a", "role", r_synced));
  // An unsynced control-plane name is free for the child's own entity.
  EXPECT_EQ(api("POST", "a", "/roles", {{"name", "quiet"}}).status, 201);
  EXPECT_EQ(api("POST", "a", "/resource-servers", {{"identifier", "internal:billing"}}).status,
            201);
}

TEST_F(SyncTest, SwitchingAnEntityFilterRemovesAndRestoresCopies) {
  make_tenant("a");
  make_tenant("b");
  const std::string api_id = "https://api.toggle.test";
  const std::string rs_id = create_rs(api_id)["id"];
  const std::string rid = create_role("toggler")["id"];
  ASSERT_EQ(
      api("POST", "", "/roles/" + rid + "/permissions", perms(api_id, {"read:things"})).status,
      204);
  auto u = api("POST", "a", "/users",
               {{"email", "t@example.com"},
                {"password", "correct horse battery"},
                {"connection", "Username-Password-Authentication"}});
  const std::string uid = body(u)["user_id"];
  ASSERT_EQ(
      api("POST", "a", "/users/" + ks::http::url_encode(uid) + "/roles", {{"roles", {rid}}}).status,
      204);

  // Role: internal → copies and their assignments leave every child.
  ASSERT_EQ(api("PATCH", "", "/roles/" + rid, {{"metadata", {{"internal", true}}}}).status, 200);
  EXPECT_FALSE(stored("a", "role", rid));
  EXPECT_FALSE(stored("b", "role", rid));
  EXPECT_TRUE(links_from("a", "user_role", uid).empty());
  // Back to synced: copied again, with its permissions.
  ASSERT_EQ(api("PATCH", "", "/roles/" + rid, {{"metadata", {{"internal", false}}}}).status, 200);
  for (const char* t : {"a", "b"}) {
    EXPECT_TRUE(stored(t, "role", rid)) << t;
    EXPECT_EQ(links_from(t, "role_permission", rid),
              std::set<std::string>{key(api_id, "read:things")});
  }

  // Resource server: sync=false → copies gone, and the synced role's permission on it too.
  ASSERT_EQ(
      api("PATCH", "", "/resource-servers/" + rs_id, {{"metadata", {{"sync", false}}}}).status,
      200);
  for (const char* t : {"a", "b"}) {
    EXPECT_FALSE(stored(t, "resource_server", rs_id));
    EXPECT_TRUE(links_from(t, "role_permission", rid).empty());
    EXPECT_TRUE(stored(t, "role", rid));
  }
  ASSERT_EQ(api("PATCH", "", "/resource-servers/" + rs_id, {{"metadata", {{"sync", true}}}}).status,
            200);
  for (const char* t : {"a", "b"}) {
    EXPECT_TRUE(stored(t, "resource_server", rs_id));
    EXPECT_EQ(links_from(t, "role_permission", rid),
              std::set<std::string>{key(api_id, "read:things")});
  }
}

TEST_F(SyncTest, TypeSwitchesStopSyncAndResyncAppliesThem) {
  make_tenant("a");
  const std::string rs_id = create_rs("https://api.types.test")["id"];
  const std::string rid = create_role("typed")["id"];
  ASSERT_TRUE(stored("a", "role", rid));

  // Readable and writable through the control plane's settings.
  patch_cp_settings({{"sync", {{"roles", false}}}});
  auto s = body(api("GET", "", "/tenants/settings"));
  EXPECT_EQ(s["sync"]["roles"], false);
  const std::string later = create_role("later")["id"];
  EXPECT_FALSE(stored("a", "role", later));
  // A write to an entity whose type is switched off removes its copies.
  ASSERT_EQ(api("PATCH", "", "/roles/" + rid, {{"description", "changed"}}).status, 200);
  EXPECT_FALSE(stored("a", "role", rid));
  // Resource servers are unaffected by the roles switch.
  EXPECT_TRUE(stored("a", "resource_server", rs_id));

  // Changing a switch applies it to every child at once, in the settings write.
  patch_cp_settings({{"sync", {{"roles", true}, {"resource_servers", false}}}});
  EXPECT_TRUE(stored("a", "role", rid));
  EXPECT_TRUE(stored("a", "role", later));
  EXPECT_EQ((*stored("a", "role", rid))["description"], "changed");
  EXPECT_FALSE(stored("a", "resource_server", rs_id));

  patch_cp_settings({{"sync", {{"resource_servers", true}}}});
  EXPECT_TRUE(stored("a", "resource_server", rs_id));
}

TEST_F(SyncTest, TheFilterHookDecidesPerTargetTenant) {
  std::set<std::string> asked;
  auto runner = std::make_shared<ks::test::FakeHookRunner>(
      [&](ks::hooks::Trigger t, const ks::hooks::Script&, const Json& ev, ks::hooks::Outcome& out) {
        ASSERT_EQ(t, ks::hooks::Trigger::kSyncFilter);
        const std::string kind = ev["kind"], target = ev["targetTenant"]["id"];
        asked.insert(kind + ":" + ev["entity"].value("id", "") + "@" + target);
        EXPECT_FALSE(ev["entity"].contains("_synced"));
        if (target == "a") {
          EXPECT_EQ(ev["targetTenant"]["friendly_name"], "Tenant A");
        }
        out.sync = !(kind == "resource_server" && target == "b");
      });
  open_engine([&](ks::Config&, ks::Engine::Deps& d) { d.hooks = runner; });
  tok_ = admin();
  ASSERT_EQ(api("POST", "", "/tenants", {{"id", "a"}, {"friendly_name", "Tenant A"}}).status, 201);
  make_tenant("b");
  auto& sync = impl().sync();  // the engine's: the one the handlers and tenant creation use
  impl().store().write("control_plane", [&](ks::store::Tx& cp) {
    cp.insert(
        "hook", "hk_filter",
        {{"trigger_id", "sync-filter"}, {"code", "-- decided by the fake"}, {"enabled", true}});
    cp.insert("hook", "hk_off", {{"trigger_id", "sync-filter"}, {"code", ""}, {"enabled", false}});
  });
  Json rs = {{"id", "api_hooked"},
             {"identifier", "https://api.hooked.test"},
             {"name", "Hooked"},
             {"scopes", Json::array()},
             {"is_system", false}};
  Json role = {{"id", "rol_hooked"}, {"name", "hooked"}, {"is_system", false}};
  impl().store().write("control_plane", [&](ks::store::Tx& cp) {
    cp.insert("resource_server", "api_hooked", rs, "https://api.hooked.test");
    cp.insert("role", "rol_hooked", role, "hooked");
    sync.resource_server_changed(cp, "api_hooked", "https://api.hooked.test");
    sync.role_changed(cp, "rol_hooked");
  });
  EXPECT_TRUE(stored("a", "resource_server", "api_hooked"));
  EXPECT_FALSE(stored("b", "resource_server", "api_hooked"));
  EXPECT_TRUE(stored("a", "role", "rol_hooked"));
  EXPECT_TRUE(stored("b", "role", "rol_hooked"));
  EXPECT_TRUE(asked.count("resource_server:api_hooked@a"));
  EXPECT_TRUE(asked.count("resource_server:api_hooked@b"));
  EXPECT_FALSE(asked.count("resource_server:api_hooked@control_plane"));
  for (const auto& c : runner->calls()) EXPECT_EQ(c.script, "control_plane/hk_filter");

  // Provisioning a tenant consults it too.
  make_tenant("c");
  EXPECT_TRUE(stored("c", "resource_server", "api_hooked"));
  EXPECT_TRUE(asked.count("role:rol_hooked@c"));
  EXPECT_TRUE(stored("c", "role", "rol_hooked"));

  // A failing filter fails the control plane's write, naming the tenant; nothing changes.
  runner->set([](ks::hooks::Trigger, const ks::hooks::Script& s, const Json&,
                 ks::hooks::Outcome& out) { out.error = s.name + ": boom"; });
  auto r = api("POST", "", "/roles", {{"name", "broken"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("Sync filter failed for tenant"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("hk_filter: boom"), std::string::npos) << r.body;
  EXPECT_EQ(body(api("GET", "", "/roles?name_filter=broken")).size(), 0u);
}

// Without filter hooks the runner is never asked.
TEST_F(SyncTest, NoFilterHooksNoRunnerCalls) {
  auto runner = std::make_shared<ks::test::FakeHookRunner>();
  open_engine([&](ks::Config&, ks::Engine::Deps& d) { d.hooks = runner; });
  tok_ = admin();
  make_tenant("a");
  create_rs("https://api.plain.test");
  create_role("plain");
  EXPECT_TRUE(runner->calls().empty());
}

// --- protection on the child
// ----------------------------------------------------------------------

TEST_F(SyncTest, CopiesCannotBeModifiedOnTheChild) {
  make_tenant("a");
  const std::string api_id = "https://api.locked.test";
  const std::string rs_id = create_rs(api_id)["id"];
  const std::string rid = create_role("locked")["id"];
  ASSERT_EQ(
      api("POST", "", "/roles/" + rid + "/permissions", perms(api_id, {"read:things"})).status,
      204);
  auto expect_403 = [&](const Response& r, const std::string& message) {
    EXPECT_EQ(r.status, 403) << r.body;
    auto b = body(r);
    EXPECT_EQ(b["statusCode"], 403);
    EXPECT_EQ(b["error"], "Forbidden");
    EXPECT_EQ(b["message"], message);
    EXPECT_EQ(b["errorCode"], "operation_not_supported");
  };
  expect_403(api("PATCH", "a", "/resource-servers/" + rs_id, {{"name", "mine"}}), kRsMessage);
  expect_403(
      api("PATCH", "a", "/resource-servers/" + ks::http::url_encode(api_id), {{"name", "mine"}}),
      kRsMessage);
  expect_403(api("DELETE", "a", "/resource-servers/" + rs_id), kRsMessage);
  expect_403(api("PATCH", "a", "/roles/" + rid, {{"description", "mine"}}), kRoleMessage);
  expect_403(api("DELETE", "a", "/roles/" + rid), kRoleMessage);
  expect_403(api("POST", "a", "/roles/" + rid + "/permissions", perms(api_id, {"write:things"})),
             kRoleMessage);
  expect_403(api("DELETE", "a", "/roles/" + rid + "/permissions", perms(api_id, {"read:things"})),
             kRoleMessage);
  // Nothing changed.
  EXPECT_EQ((*stored("a", "resource_server", rs_id))["name"], "API " + api_id);
  EXPECT_EQ((*stored("a", "role", rid))["description"], "Role locked");
  EXPECT_EQ(links_from("a", "role_permission", rid),
            std::set<std::string>{key(api_id, "read:things")});

  // The child's own entities cannot take a synced identifier or name.
  auto dup_rs = api("POST", "a", "/resource-servers", {{"identifier", api_id}});
  EXPECT_EQ(dup_rs.status, 409);
  EXPECT_EQ(body(dup_rs)["errorCode"], "conflict");
  EXPECT_EQ(api("POST", "a", "/roles", {{"name", "locked"}}).status, 409);
  const std::string own = body(api("POST", "a", "/roles", {{"name", "own"}}))["id"];
  EXPECT_EQ(api("PATCH", "a", "/roles/" + own, {{"name", "locked"}}).status, 409);
  // The child's own roles may use the synced API's permissions.
  EXPECT_EQ(
      api("POST", "a", "/roles/" + own + "/permissions", perms(api_id, {"write:things"})).status,
      204);
}

TEST_F(SyncTest, IsSystemCannotBeSetAndMetadataMustBeAnObject) {
  make_tenant("a");
  auto count_roles = [&](const std::string& t) {
    return body(api("GET", t, "/roles?include_totals=true"))["total"].get<int>();
  };
  const int cp_roles = count_roles(""), a_roles = count_roles("a");
  for (const std::string t : {"", "a"}) {
    auto r = api("POST", t, "/roles", {{"name", "sneaky"}, {"is_system", true}});
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(body(r)["errorCode"], "invalid_body");
    EXPECT_EQ(api("POST", t, "/roles", {{"name", "sneaky"}, {"is_system", false}}).status, 400);
    EXPECT_EQ(api("POST", t, "/roles", {{"name", "sneaky"}, {"metadata", "x"}}).status, 400);
    EXPECT_EQ(api("POST", t, "/roles", {{"name", "sneaky"}, {"metadata", Json::array()}}).status,
              400);
    EXPECT_EQ(
        api("POST", t, "/resource-servers", {{"identifier", "https://x.test"}, {"is_system", true}})
            .status,
        400);
  }
  EXPECT_EQ(count_roles(""), cp_roles);
  EXPECT_EQ(count_roles("a"), a_roles);
  const std::string rid = create_role("plain")["id"];
  const std::string rs_id = create_rs("https://api.plain.test")["id"];
  EXPECT_EQ(api("PATCH", "", "/roles/" + rid, {{"is_system", true}}).status, 400);
  EXPECT_EQ(api("PATCH", "", "/roles/" + rid, {{"metadata", 5}}).status, 400);
  EXPECT_EQ(api("PATCH", "", "/roles/" + rid, {{"name", ""}}).status, 400);
  EXPECT_EQ(api("PATCH", "", "/resource-servers/" + rs_id, {{"is_system", true}}).status, 400);
  EXPECT_EQ(body(api("GET", "", "/roles/" + rid))["is_system"], false);
  EXPECT_EQ(body(api("GET", "", "/resource-servers/" + rs_id))["is_system"], false);
  EXPECT_EQ((*stored("a", "role", rid))["name"], "plain");
}

// --- all or nothing
// -------------------------------------------------------------------------------

TEST_F(SyncTest, AChildsOwnEntityMakesTheWholeWriteFailAndNothingChanges) {
  make_tenant("a");
  make_tenant("b");
  make_tenant("c");
  ASSERT_EQ(
      api("POST", "b", "/resource-servers", {{"identifier", "https://api.taken.test"}}).status,
      201);
  ASSERT_EQ(api("POST", "b", "/roles", {{"name", "taken"}}).status, 201);
  const size_t cp_rs = count("control_plane", "resource_server");
  const size_t a_rs = count("a", "resource_server"), c_rs = count("c", "resource_server");

  auto r = api("POST", "", "/resource-servers", {{"identifier", "https://api.taken.test"}});
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_EQ(body(r)["errorCode"], "conflict");
  EXPECT_NE(body(r)["message"].get<std::string>().find("'b'"), std::string::npos) << r.body;
  EXPECT_EQ(count("control_plane", "resource_server"), cp_rs);
  EXPECT_EQ(count("a", "resource_server"), a_rs);
  EXPECT_EQ(count("c", "resource_server"), c_rs);

  const size_t cp_roles = count("control_plane", "role"), a_roles = count("a", "role");
  auto rr = api("POST", "", "/roles", {{"name", "taken"}});
  EXPECT_EQ(rr.status, 409) << rr.body;
  EXPECT_NE(body(rr)["message"].get<std::string>().find("'b'"), std::string::npos) << rr.body;
  EXPECT_EQ(count("control_plane", "role"), cp_roles);
  EXPECT_EQ(count("a", "role"), a_roles);

  // A rename into a child's own name fails the same way: the original and every copy keep it.
  const std::string rid = create_role("free")["id"];
  auto rn = api("PATCH", "", "/roles/" + rid, {{"name", "taken"}, {"description", "new"}});
  EXPECT_EQ(rn.status, 409) << rn.body;
  EXPECT_EQ(body(api("GET", "", "/roles/" + rid))["name"], "free");
  EXPECT_EQ((*stored("a", "role", rid))["name"], "free");
  EXPECT_EQ((*stored("c", "role", rid))["description"], "Role free");

  // Turning sync back on for an entity that collides fails too, leaving it unsynced everywhere.
  const std::string quiet = create_role("taken-later", {{"metadata", {{"sync", false}}}})["id"];
  ASSERT_EQ(api("POST", "c", "/roles", {{"name", "taken-later"}}).status, 201);
  auto on = api("PATCH", "", "/roles/" + quiet, {{"metadata", Json::object()}});
  EXPECT_EQ(on.status, 409) << on.body;
  EXPECT_NE(body(on)["message"].get<std::string>().find("'c'"), std::string::npos) << on.body;
  EXPECT_EQ(body(api("GET", "", "/roles/" + quiet))["metadata"]["sync"], false);
  EXPECT_FALSE(stored("a", "role", quiet));

  // Once the child's own entity is gone, the control plane's write goes through.
  std::string own;
  for (const auto& rs : body(api("GET", "b", "/resource-servers")))
    if (rs["identifier"] == "https://api.taken.test") own = rs["id"];
  ASSERT_EQ(api("DELETE", "b", "/resource-servers/" + own).status, 204);
  auto ok = api("POST", "", "/resource-servers", {{"identifier", "https://api.taken.test"}});
  ASSERT_EQ(ok.status, 201) << ok.body;
  for (const char* t : {"a", "b", "c"})
    EXPECT_TRUE(stored(t, "resource_server", body(ok)["id"].get<std::string>())) << t;
}

TEST_F(SyncTest, ChildrenInTheirOwnDatabasesAreAllOrNothingToo) {
  // A database-isolated child joins the control plane's transaction: a conflict there rolls
  // back the shared database's writes as well, and a clean write reaches both.
  make_tenant("shared-child");
  auto iso = api("POST", "", "/tenants", {{"id", "iso-child"}, {"isolation", "database"}});
  ASSERT_EQ(iso.status, 201) << iso.body;
  ASSERT_EQ(impl().store().isolation("iso-child"), ks::store::Isolation::Database);
  ASSERT_EQ(api("POST", "iso-child", "/roles", {{"name", "clash"}}).status, 201);
  const size_t cp_roles = count("control_plane", "role"), s_roles = count("shared-child", "role");
  auto r = api("POST", "", "/roles", {{"name", "clash"}});
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_NE(body(r)["message"].get<std::string>().find("'iso-child'"), std::string::npos);
  EXPECT_EQ(count("control_plane", "role"), cp_roles);
  EXPECT_EQ(count("shared-child", "role"), s_roles);

  const std::string rid = create_role("fine")["id"];
  EXPECT_TRUE(stored("shared-child", "role", rid));
  EXPECT_TRUE(stored("iso-child", "role", rid));
  ASSERT_EQ(api("DELETE", "", "/roles/" + rid).status, 204);
  EXPECT_FALSE(stored("iso-child", "role", rid));
}

// --- scale
// ------------------------------------------------------------------------------------------

TEST_F(SyncTest, FanOutWalksEveryChildAcrossPages) {
  // Bare tenant records (no provisioning) are enough for the fan-out to walk: more than two pages.
  constexpr int kChildren = 1100;
  impl().store().write("control_plane", [&](ks::store::Tx& cp) {
    for (int i = 0; i < kChildren; ++i) {
      const std::string id = "bulk" + std::to_string(i);
      cp.insert(ks::tenancy::kTenantKind, id, {{"id", id}, {"status", "active"}});
    }
  });
  const std::string rs_id = create_rs("https://api.bulk.test")["id"];
  const std::string rid = create_role("bulk")["id"];
  ASSERT_EQ(api("POST", "", "/roles/" + rid + "/permissions",
                perms("https://api.bulk.test", {"read:things"}))
                .status,
            204);
  int copies = 0, linked = 0;
  impl().store().read("control_plane", [&](ks::store::Tx& cp) {
    for (int i = 0; i < kChildren; ++i) {
      auto& c = cp.scope("bulk" + std::to_string(i));
      copies += c.get("resource_server", rs_id).has_value() && c.get("role", rid).has_value();
      linked += c.linked("role_permission", rid, "https://api.bulk.test\nread:things");
    }
  });
  EXPECT_EQ(copies, kChildren);
  EXPECT_EQ(linked, kChildren);
  ASSERT_EQ(api("DELETE", "", "/roles/" + rid).status, 204);
  ASSERT_EQ(api("DELETE", "", "/resource-servers/" + rs_id).status, 204);
  int left = 0;
  impl().store().read("control_plane", [&](ks::store::Tx& cp) {
    for (int i = 0; i < kChildren; ++i) {
      auto& c = cp.scope("bulk" + std::to_string(i));
      left += c.count("resource_server") + c.count("role");
    }
  });
  EXPECT_EQ(left, 0);
}

}  // namespace
