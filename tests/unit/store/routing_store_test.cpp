// Unit tests for tenant placement in the SQLite store (core/store/sqlite/routing_store.cpp):
// the same behaviour for shared and per-database tenants, transactions across databases, the
// registry, dropping, the bound on open files, and moving live tenants.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "core/store/sqlite/sqlite_db.h"
#include "core/store/store.h"
#include "tests/unit/support/temp_dir.h"

namespace ks::store {
namespace {

namespace fs = std::filesystem;
using ks::test::TempDir;

ListQuery all() {
  ListQuery q;
  q.limit = 100000;
  return q;
}

std::vector<std::string> ids(const std::vector<Record>& rs) {
  std::vector<std::string> out;
  for (const auto& r : rs) out.push_back(r.id);
  return out;
}

// Everything a test tenant holds, through the Store interface only (kinds and link sources the
// tests use), so it works for in-memory stores too.
struct Snapshot {
  std::map<std::string, std::vector<std::tuple<std::string, int64_t, std::string>>> records;
  std::map<std::string, std::string> unique_keys;  // kind/ukey -> id
  std::vector<std::tuple<std::string, std::string, int64_t, std::string>> links;
  bool operator==(const Snapshot&) const = default;
};

Snapshot snapshot(Store& st, const std::string& tenant) {
  Snapshot s;
  st.read(tenant, [&](Tx& tx) {
    for (const char* kind : {"user", "client", "role", "log"}) {
      for (const auto& r : tx.list(kind, all()))
        s.records[kind].emplace_back(r.id, r.seq, r.data.dump());
      for (const auto& r : tx.list(kind, all())) {
        const std::string key = r.data.value("email", r.data.value("name", ""));
        if (key.empty()) continue;
        if (auto f = tx.find(kind, key)) s.unique_keys[std::string(kind) + "/" + key] = f->id;
      }
    }
    for (const char* from : {"r1", "r2", "r3"}) {
      for (const auto& l : tx.links_from("role_user", from, all()))
        s.links.emplace_back(l.from, l.to, l.seq, l.data.dump());
    }
  });
  return s;
}

// A tenant with records of several kinds, unique keys, updated and removed rows, and links.
void fill(Store& st, const std::string& tenant) {
  st.write(tenant, [](Tx& tx) {
    for (int i = 0; i < 20; ++i) {
      const std::string email = "u" + std::to_string(i) + "@example.com";
      tx.insert("user", "u" + std::to_string(i), {{"email", email}, {"i", i}}, email);
    }
    tx.insert("client", "c1", {{"name", "app"}}, "app");
    for (const char* r : {"r1", "r2", "r3"}) tx.insert("role", r, {{"name", r}}, r);
    tx.link("role_user", "r1", "u1", {{"since", 1}});
    tx.link("role_user", "r1", "u2");
    tx.link("role_user", "r2", "u3");
    tx.update("user", "u5", {{"email", "five@example.com"}, {"i", 5}}, "five@example.com");
    tx.remove("user", "u7");
    tx.unlink("role_user", "r1", "u2");
    tx.link("role_user", "r3", "u9", {{"x", "y"}});
  });
}

std::set<std::string> open_db_files(const std::string& dir) {
  std::set<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc/self/fd", ec)) {
    auto target = fs::read_symlink(e.path(), ec);
    if (ec) continue;
    const std::string t = target.string();
    if (t.rfind(dir, 0) == 0 && t.size() > 3 && t.compare(t.size() - 3, 3, ".db") == 0)
      out.insert(t);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The same behaviour in every placement: {shared, database} x {file, memory}

struct Mode {
  Isolation isolation;
  bool file;
};

std::string mode_name(const ::testing::TestParamInfo<Mode>& info) {
  return std::string(info.param.isolation == Isolation::Database ? "Database" : "Shared") +
         (info.param.file ? "File" : "Memory");
}

class PlacementTest : public ::testing::TestWithParam<Mode> {
 protected:
  void SetUp() override {
    store_ = open_sqlite(GetParam().file ? dir_.file("ks.db") : ":memory:");
    // "cp" stays shared, as the control plane does; the children take the mode under test.
    for (const char* t : {"acme", "globex"}) store_->create_tenant(t, GetParam().isolation);
  }
  TempDir dir_;
  std::unique_ptr<Store> store_;
};

INSTANTIATE_TEST_SUITE_P(Modes, PlacementTest,
                         ::testing::Values(Mode{Isolation::Shared, true},
                                           Mode{Isolation::Database, true},
                                           Mode{Isolation::Shared, false},
                                           Mode{Isolation::Database, false}),
                         mode_name);

TEST_P(PlacementTest, ReportsItsIsolation) {
  EXPECT_EQ(store_->isolation("acme"), GetParam().isolation);
  EXPECT_EQ(store_->isolation("cp"), Isolation::Shared);
  EXPECT_EQ(store_->isolation("never-created"), Isolation::Shared);
  EXPECT_EQ(fs::exists(dir_.file("tenants/acme.db")),
            GetParam().file && GetParam().isolation == Isolation::Database);
}

TEST_P(PlacementTest, CrudUniqueKeysAndConflicts) {
  store_->write("acme", [](Tx& tx) {
    EXPECT_EQ(tx.tenant(), "acme");
    tx.insert("user", "u1", {{"email", "a@x"}}, "a@x");
    EXPECT_THROW(tx.insert("user", "u1", Json::object()), Conflict);
    EXPECT_THROW(tx.insert("user", "u2", Json::object(), "a@x"), Conflict);
    tx.insert("user", "u2", {{"email", "b@x"}}, "b@x");
    EXPECT_TRUE(tx.update("user", "u2", {{"email", "c@x"}}, "c@x"));
    EXPECT_FALSE(tx.update("user", "nope", Json::object()));
  });
  store_->read("acme", [](Tx& tx) {
    EXPECT_EQ(tx.find("user", "a@x")->id, "u1");
    EXPECT_EQ(tx.find("user", "c@x")->id, "u2");
    EXPECT_FALSE(tx.find("user", "b@x"));
    EXPECT_EQ(tx.count("user"), 2u);
  });
  // Tenants do not see each other, whatever their placement.
  store_->read("globex", [](Tx& tx) { EXPECT_EQ(tx.count("user"), 0u); });
  store_->read("cp", [](Tx& tx) { EXPECT_FALSE(tx.find("user", "a@x")); });
  store_->write("acme", [](Tx& tx) { EXPECT_TRUE(tx.remove("user", "u1")); });
  store_->read("acme", [](Tx& tx) { EXPECT_FALSE(tx.get("user", "u1")); });
}

TEST_P(PlacementTest, OrderAndCheckpointPagination) {
  fill(*store_, "acme");
  store_->read("acme", [](Tx& tx) {
    auto first = tx.list("user", ListQuery::first(5));
    ASSERT_EQ(first.size(), 5u);
    ListQuery q;
    q.after_seq = first.back().seq;
    q.limit = 100;
    auto rest = tx.list("user", q);
    EXPECT_EQ(first.size() + rest.size(), 19u);
    EXPECT_EQ(rest.front().id, "u5");  // updated in place, kept its position
    for (size_t i = 1; i < rest.size(); ++i) EXPECT_LT(rest[i - 1].seq, rest[i].seq);
    ListQuery f;
    f.field = "email";
    f.value = "five@example.com";
    EXPECT_EQ(ids(tx.list("user", f)), std::vector<std::string>{"u5"});
    EXPECT_EQ(tx.count_links_from("role_user", "r1"), 1u);
    EXPECT_TRUE(tx.linked("role_user", "r3", "u9"));
    EXPECT_EQ(tx.links_to("role_user", "u9", all()).at(0).data["x"], "y");
  });
}

TEST_P(PlacementTest, ScopeAcrossDatabasesCommitsTogether) {
  store_->write("cp", [](Tx& cp) {
    cp.insert("role", "sync", {{"name", "admin"}});
    for (const char* t : {"acme", "globex"}) {
      Tx& child = cp.scope(t);
      EXPECT_EQ(child.tenant(), t);
      EXPECT_EQ(&child, &cp.scope(t));
      EXPECT_EQ(&cp, &child.scope("cp"));
      child.insert("role", "sync", {{"name", "admin"}, {"is_system", true}});
      EXPECT_EQ(child.count("role"), 1u);  // sees its own uncommitted write
    }
    EXPECT_FALSE(cp.get("role", "sync")->data.contains("is_system"));
  });
  for (const char* t : {"cp", "acme", "globex"})
    store_->read(t, [&](Tx& tx) { EXPECT_TRUE(tx.get("role", "sync")) << t; });
  // A child's transaction can reach the control plane and the other child too.
  store_->write("acme", [](Tx& tx) {
    tx.scope("globex").insert("user", "from-acme", Json::object());
    tx.scope("cp").insert("user", "from-acme", Json::object());
  });
  store_->read("globex", [](Tx& tx) { EXPECT_TRUE(tx.get("user", "from-acme")); });
  store_->read("cp", [](Tx& tx) { EXPECT_TRUE(tx.get("user", "from-acme")); });
}

TEST_P(PlacementTest, ScopeAcrossDatabasesRollsBackTogether) {
  store_->write("globex", [](Tx& tx) { tx.insert("role", "taken", Json::object()); });
  EXPECT_THROW(store_->write("cp",
                             [](Tx& cp) {
                               cp.insert("role", "r", Json::object());
                               cp.scope("acme").insert("role", "r", Json::object());
                               cp.scope("acme").link("role_user", "r", "u");
                               cp.scope("globex").insert("role", "taken", Json::object());
                             }),
               Conflict);
  struct Boom {};
  EXPECT_THROW(store_->write("acme",
                             [](Tx& tx) {
                               tx.insert("role", "r", Json::object());
                               tx.scope("cp").insert("role", "r", Json::object());
                               throw Boom{};
                             }),
               Boom);
  for (const char* t : {"cp", "acme"}) {
    store_->read(t, [&](Tx& tx) {
      EXPECT_FALSE(tx.get("role", "r")) << t;
      EXPECT_FALSE(tx.linked("role_user", "r", "u")) << t;
    });
  }
  // Read transactions stay read-only in every database they reach.
  store_->read("cp", [](Tx& cp) {
    EXPECT_THROW(cp.scope("acme").insert("role", "x", Json::object()), StoreError);
    EXPECT_TRUE(cp.scope("globex").get("role", "taken"));
  });
}

TEST_P(PlacementTest, PurgeTenantAndNesting) {
  fill(*store_, "acme");
  fill(*store_, "globex");
  store_->write("cp", [](Tx& cp) { cp.scope("acme").purge_tenant(); });
  EXPECT_EQ(snapshot(*store_, "acme"), Snapshot{});
  EXPECT_NE(snapshot(*store_, "globex"), Snapshot{});
  store_->write("acme", [&](Tx&) {
    EXPECT_THROW(store_->read("globex", [](Tx&) {}), StoreError);
    EXPECT_THROW(store_->move_tenant("globex", Isolation::Shared), StoreError);
  });
}

TEST_P(PlacementTest, CreateIsRefusedForAnExistingTenant) {
  EXPECT_THROW(store_->create_tenant("acme", Isolation::Shared), Conflict);
  EXPECT_THROW(store_->create_tenant("acme", Isolation::Database), Conflict);
  store_->write("legacy", [](Tx& tx) { tx.insert("user", "u", Json::object()); });
  EXPECT_THROW(store_->create_tenant("legacy", Isolation::Database), Conflict);
  EXPECT_THROW(store_->create_tenant("../evil", Isolation::Database), std::invalid_argument);
}

TEST_P(PlacementTest, DropRemovesDataAndFileAndIsIdempotent) {
  fill(*store_, "acme");
  store_->write("acme", [](Tx& tx) { tx.insert("log", "l1", Json::object()); });
  store_->drop_tenant("acme");
  EXPECT_FALSE(fs::exists(dir_.file("tenants/acme.db")));
  EXPECT_FALSE(fs::exists(dir_.file("tenants/acme.db-wal")));
  EXPECT_FALSE(fs::exists(dir_.file("tenants/acme.db-shm")));
  EXPECT_EQ(store_->isolation("acme"), Isolation::Shared);
  EXPECT_EQ(snapshot(*store_, "acme"), Snapshot{});
  store_->drop_tenant("acme");
  store_->drop_tenant("never-created");
  // The id can be used again.
  store_->create_tenant("acme", Isolation::Database);
  store_->read("acme", [](Tx& tx) { EXPECT_EQ(tx.count("user"), 0u); });
}

TEST_P(PlacementTest, MoveBothWaysKeepsEverything) {
  fill(*store_, "acme");
  fill(*store_, "globex");
  store_->write("cp", [](Tx& tx) { tx.insert("user", "cp-user", Json::object()); });
  const Snapshot before = snapshot(*store_, "acme");
  const Snapshot other = snapshot(*store_, "globex");
  // A checkpoint token taken before the move.
  int64_t token = 0;
  std::vector<std::string> expected_rest;
  store_->read("acme", [&](Tx& tx) {
    token = tx.list("user", ListQuery::first(4)).back().seq;
    ListQuery q = all();
    q.after_seq = token;
    expected_rest = ids(tx.list("user", q));
  });
  const Isolation there =
      GetParam().isolation == Isolation::Shared ? Isolation::Database : Isolation::Shared;
  for (Isolation to : {there, GetParam().isolation, there}) {
    store_->move_tenant("acme", to);
    EXPECT_EQ(store_->isolation("acme"), to);
    EXPECT_EQ(fs::exists(dir_.file("tenants/acme.db")),
              GetParam().file && to == Isolation::Database);
    EXPECT_EQ(snapshot(*store_, "acme"), before);
    EXPECT_EQ(snapshot(*store_, "globex"), other);
    store_->read("acme", [&](Tx& tx) {
      ListQuery q = all();
      q.after_seq = token;
      EXPECT_EQ(ids(tx.list("user", q)), expected_rest);
    });
  }
  store_->read("cp", [](Tx& tx) { EXPECT_TRUE(tx.get("user", "cp-user")); });
  // New rows sort after the moved ones.
  store_->write("acme", [](Tx& tx) { tx.insert("user", "newest", Json::object()); });
  store_->read("acme", [](Tx& tx) {
    ListQuery q = all();
    q.newest_first = true;
    EXPECT_EQ(tx.list("user", q).front().id, "newest");
  });
  // Moving to where it is already is a no-op; an unknown tenant is an error.
  store_->move_tenant("acme", there);
  EXPECT_THROW(store_->move_tenant("nobody", Isolation::Database), UnknownTenant);
  EXPECT_THROW(store_->move_tenant("nobody", Isolation::Shared), UnknownTenant);
  EXPECT_EQ(store_->isolation("nobody"), Isolation::Shared);
}

int64_t version_of(Store& st, const std::string& tenant) {
  int64_t v = -1;
  st.read(tenant, [&](Tx& tx) { v = tx.state_version(); });
  return v;
}

TEST_P(PlacementTest, StateVersionRisesWithEveryWriteOfAStateKindOnly) {
  EXPECT_EQ(version_of(*store_, "acme"), 0);
  store_->write("acme", [](Tx& tx) {
    tx.insert("user", "u1", {{"email", "a@example.com"}});
    tx.insert("session", "s1", {{"user", "u1"}});
    tx.link("role_user", "r1", "u1");
  });
  EXPECT_EQ(version_of(*store_, "acme"), 0) << "users, sessions and links are not state";
  int64_t last = 0;
  for (const auto& kind : kStateKinds) {
    store_->write("acme", [&](Tx& tx) { tx.insert(kind, "x", {{"v", 1}}); });
    const int64_t inserted = version_of(*store_, "acme");
    store_->write("acme", [&](Tx& tx) { tx.update(kind, "x", {{"v", 2}}); });
    const int64_t updated = version_of(*store_, "acme");
    store_->write("acme", [&](Tx& tx) { tx.remove(kind, "x"); });
    const int64_t removed = version_of(*store_, "acme");
    EXPECT_GT(inserted, last) << kind;
    EXPECT_GT(updated, inserted) << kind;
    EXPECT_GT(removed, updated) << kind;
    last = removed;
  }
  EXPECT_EQ(version_of(*store_, "globex"), 0) << "one tenant's writes leave another's version";
  // A rolled back write leaves it.
  EXPECT_THROW(store_->write("acme",
                             [](Tx& tx) {
                               tx.insert("client", "c", {{"v", 1}});
                               throw std::runtime_error("no");
                             }),
               std::runtime_error);
  EXPECT_EQ(version_of(*store_, "acme"), last);
  // Writes through scope raise the scoped tenant's version.
  store_->write("cp", [](Tx& tx) { tx.scope("globex").insert("client", "c", {{"v", 1}}); });
  EXPECT_EQ(version_of(*store_, "globex"), 1);
  EXPECT_EQ(version_of(*store_, "cp"), 0);
}

TEST_P(PlacementTest, StateVersionKeepsRisingAcrossMoves) {
  store_->write("acme", [](Tx& tx) {
    for (int i = 0; i < 5; ++i) tx.insert("client", "c" + std::to_string(i), {{"i", i}});
  });
  int64_t last = version_of(*store_, "acme");
  const Isolation there =
      GetParam().isolation == Isolation::Shared ? Isolation::Database : Isolation::Shared;
  for (Isolation to : {there, GetParam().isolation, there}) {
    store_->move_tenant("acme", to);
    const int64_t moved = version_of(*store_, "acme");
    EXPECT_GT(moved, last);
    last = moved;
  }
}

TEST_P(PlacementTest, WalkSeesTheTenantWhereverItLives) {
  fill(*store_, "acme");
  fill(*store_, "globex");
  auto walk = [&] {
    std::vector<std::tuple<std::string, std::string, std::string, int64_t, std::string>> out;
    // Through the control plane's read transaction, as the export does.
    store_->read("cp", [&](Tx& cp) {
      Tx& tx = cp.scope("acme");
      tx.for_each_record([&](const RecordEntry& e) {
        out.emplace_back(e.kind, e.record.id, e.unique_key, e.record.seq, e.record.data.dump());
      });
      tx.for_each_link([&](const LinkEntry& e) {
        out.emplace_back(e.rel, e.link.from, e.link.to, e.link.seq, e.link.data.dump());
      });
    });
    return out;
  };
  const auto before = walk();
  ASSERT_EQ(before.size(), 19u + 1 + 3 + 3);  // users (one removed), client, roles, links
  EXPECT_EQ(std::get<2>(before.front()), "u0@example.com");
  const Isolation there =
      GetParam().isolation == Isolation::Shared ? Isolation::Database : Isolation::Shared;
  store_->move_tenant("acme", there);
  EXPECT_EQ(walk(), before);  // seq values move with the data
}

// ---------------------------------------------------------------------------------------------
// Sequence numbers when a tenant comes back into the shared database

TEST(RoutingSeq, MovingBackIntoSharedKeepsValuesAndRaisesTheCounter) {
  auto st = open_sqlite(":memory:");
  st->create_tenant("acme", Isolation::Database);
  // acme's own counter runs far ahead of the shared one.
  st->write("acme", [](Tx& tx) {
    for (int i = 0; i < 500; ++i) tx.insert("log", "l" + std::to_string(i), Json::object());
  });
  st->write("cp", [](Tx& tx) { tx.insert("log", "cp1", Json::object()); });
  int64_t acme_max = 0, cp_seq = 0;
  st->read("acme", [&](Tx& tx) { acme_max = tx.list("log", all()).back().seq; });
  st->read("cp", [&](Tx& tx) { cp_seq = tx.get("log", "cp1")->seq; });
  ASSERT_GT(acme_max, cp_seq);
  st->move_tenant("acme", Isolation::Shared);
  st->read("acme", [&](Tx& tx) { EXPECT_EQ(tx.list("log", all()).back().seq, acme_max); });
  // Values may now repeat across tenants (harmless); new ones are above every existing one.
  st->write("cp", [](Tx& tx) { tx.insert("log", "cp2", Json::object()); });
  st->write("acme", [](Tx& tx) { tx.insert("log", "l500", Json::object()); });
  st->read("cp", [&](Tx& tx) {
    EXPECT_GT(tx.get("log", "cp2")->seq, acme_max);
    EXPECT_EQ(ids(tx.list("log", all())), (std::vector<std::string>{"cp1", "cp2"}));
  });
  st->read("acme", [&](Tx& tx) {
    auto logs = tx.list("log", all());
    ASSERT_EQ(logs.size(), 501u);
    EXPECT_EQ(logs.back().id, "l500");
    EXPECT_GT(logs.back().seq, acme_max);
  });
}

// ---------------------------------------------------------------------------------------------
// Files

TEST(RoutingFile, RegistrySurvivesReopen) {
  TempDir dir;
  {
    auto st = open_sqlite(dir.file("ks.db"));
    st->create_tenant("iso", Isolation::Database);
    st->create_tenant("sha", Isolation::Shared);
    st->write("iso", [](Tx& tx) { tx.insert("user", "u", {{"v", 1}}, "key"); });
    st->write("sha", [](Tx& tx) { tx.insert("user", "u", {{"v", 2}}); });
  }
  EXPECT_TRUE(fs::exists(dir.file("tenants/iso.db")));
  auto st = open_sqlite(dir.file("ks.db"));
  EXPECT_EQ(st->isolation("iso"), Isolation::Database);
  EXPECT_EQ(st->isolation("sha"), Isolation::Shared);
  st->read("iso", [](Tx& tx) { EXPECT_EQ(tx.find("user", "key")->data["v"], 1); });
  st->read("sha", [](Tx& tx) { EXPECT_EQ(tx.get("user", "u")->data["v"], 2); });
  // The isolated tenant's rows are in its file, not in the shared one.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(dir.file("ks.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr),
            SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db, "SELECT count(*) FROM records WHERE tenant_id = 'iso'", -1, &s, nullptr);
  ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(s, 0), 0);
  sqlite3_finalize(s);
  sqlite3_close(db);
}

TEST(RoutingFile, StateVersionsOfAnotherProcessesWritesAreSeen) {
  TempDir dir;
  auto server = open_sqlite(dir.file("ks.db"));
  server->create_tenant("iso", Isolation::Database);
  auto cli = open_sqlite(dir.file("ks.db"));  // another process: its own handles on the files
  for (const char* tenant : {"cp", "iso"}) {
    const int64_t before = version_of(*server, tenant);
    cli->write(tenant, [](Tx& tx) { tx.insert("connection", "con", {{"name", "x"}}); });
    EXPECT_GT(version_of(*server, tenant), before) << tenant;
  }
}

TEST(RoutingFile, OpenFilesAreBounded) {
  TempDir dir;
  SqliteOptions opt;
  opt.max_open_tenant_databases = 3;
  auto st = open_sqlite(dir.file("ks.db"), opt);
  const std::string tenants = dir.file("tenants");
  for (int i = 0; i < 12; ++i) {
    const std::string t = "t" + std::to_string(i);
    st->create_tenant(t, Isolation::Database);
    st->write(t, [&](Tx& tx) { tx.insert("user", "u", {{"t", t}}); });
    EXPECT_LE(sqlite::open_tenant_databases(*st), 3u);
    EXPECT_LE(open_db_files(tenants).size(), 3u);
  }
  // A transaction may reach more databases than the bound; they close once it ends.
  st->write("cp", [&](Tx& cp) {
    for (int i = 0; i < 12; ++i) cp.scope("t" + std::to_string(i)).insert("role", "r", 1);
    EXPECT_GE(open_db_files(tenants).size(), 12u);
  });
  for (int i = 0; i < 12; ++i) {
    const std::string t = "t" + std::to_string(i);
    st->read(t, [&](Tx& tx) {
      EXPECT_EQ(tx.get("user", "u")->data["t"], t);
      EXPECT_TRUE(tx.get("role", "r"));
    });
  }
  EXPECT_LE(sqlite::open_tenant_databases(*st), 3u);
  EXPECT_LE(open_db_files(tenants).size(), 3u);
}

TEST(RoutingFile, LeftoversOfAnInterruptedCreateOrMoveAreReplaced) {
  TempDir dir;
  auto st = open_sqlite(dir.file("ks.db"));
  fs::create_directories(dir.file("tenants"));
  {  // not a database at all (a create that died before the file was written)
    FILE* f = std::fopen(dir.file("tenants/junk.db").c_str(), "w");
    std::fputs("garbage", f);
    std::fclose(f);
  }
  st->create_tenant("junk", Isolation::Database);
  st->read("junk", [](Tx& tx) { EXPECT_EQ(tx.count("user"), 0u); });
  // A complete copy whose move died before the switch: the tenant is still shared.
  st->create_tenant("half", Isolation::Shared);
  st->write("half", [](Tx& tx) { tx.insert("user", "real", Json::object()); });
  {
    auto other = open_sqlite(dir.file("other.db"));
    other->create_tenant("half", Isolation::Database);
    other->write("half", [](Tx& tx) { tx.insert("user", "stale", Json::object()); });
  }
  ASSERT_TRUE(fs::exists(dir.file("tenants/half.db")));
  EXPECT_EQ(st->isolation("half"), Isolation::Shared);
  st->move_tenant("half", Isolation::Database);
  st->read("half", [](Tx& tx) {
    EXPECT_EQ(ids(tx.list("user", all())), std::vector<std::string>{"real"});
  });
}

// Two stores on one data dir stand for two processes (the CLI next to a running server): each
// has its own registry in memory and its own handles.
TEST(RoutingFile, AnotherProcessesMoveIsNoticed) {
  TempDir dir;
  auto server = open_sqlite(dir.file("ks.db"));
  auto cli = open_sqlite(dir.file("ks.db"));
  server->create_tenant("acme", Isolation::Shared);
  fill(*server, "acme");
  const Snapshot before = snapshot(*server, "acme");
  server->write("cp", [](Tx& cp) { cp.scope("acme").insert("log", "a", Json::object()); });

  cli->move_tenant("acme", Isolation::Database);
  EXPECT_EQ(server->isolation("acme"), Isolation::Shared);  // stale until it looks
  server->write("acme", [](Tx& tx) { tx.insert("log", "b", Json::object()); });
  EXPECT_EQ(server->isolation("acme"), Isolation::Database);
  cli->read("acme", [](Tx& tx) { EXPECT_TRUE(tx.get("log", "b")); });

  // Back again: the server's open handle on the old file is retired, never written to.
  cli->move_tenant("acme", Isolation::Shared);
  EXPECT_FALSE(fs::exists(dir.file("tenants/acme.db")));
  server->write("cp", [](Tx& cp) { cp.scope("acme").insert("log", "c", Json::object()); });
  server->write("acme", [](Tx& tx) { tx.insert("log", "d", Json::object()); });
  EXPECT_EQ(server->isolation("acme"), Isolation::Shared);
  cli->read("acme", [](Tx& tx) {
    EXPECT_EQ(ids(tx.list("log", all())), (std::vector<std::string>{"a", "b", "c", "d"}));
  });
  Snapshot after = snapshot(*cli, "acme");
  after.records.erase("log");
  Snapshot want = before;
  want.records.erase("log");
  EXPECT_EQ(after, want);

  // And a drop by the other process.
  cli->move_tenant("acme", Isolation::Database);
  server->read("acme", [](Tx& tx) { EXPECT_EQ(tx.count("log"), 4u); });
  cli->drop_tenant("acme");
  server->read("acme", [](Tx& tx) { EXPECT_EQ(tx.count("log"), 0u); });
  EXPECT_FALSE(fs::exists(dir.file("tenants/acme.db")));
}

// Writers keep writing while the tenant moves back and forth; every acknowledged write is there.
void writes_during_moves(const std::string& path) {
  auto st = open_sqlite(path);
  st->create_tenant("busy", Isolation::Shared);
  st->create_tenant("calm", Isolation::Database);
  std::atomic<bool> stop{false};
  std::atomic<int> acked_busy{0}, acked_calm{0}, acked_fanout{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < 3; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; !stop.load(); ++i) {
        const std::string id = "w" + std::to_string(w) + "-" + std::to_string(i);
        st->write("busy", [&](Tx& tx) { tx.insert("log", id, {{"i", i}}); });
        ++acked_busy;
      }
    });
  }
  threads.emplace_back([&] {
    for (int i = 0; !stop.load(); ++i) {
      st->write("calm", [&](Tx& tx) { tx.insert("log", std::to_string(i), Json::object()); });
      ++acked_calm;
    }
  });
  threads.emplace_back([&] {  // a control-plane fan-out into the moving tenant
    for (int i = 0; !stop.load(); ++i) {
      st->write("cp", [&](Tx& cp) {
        cp.insert("role", std::to_string(i), Json::object());
        cp.scope("busy").insert("role", std::to_string(i), Json::object());
      });
      ++acked_fanout;
    }
  });
  std::atomic<int> reads{0};
  threads.emplace_back([&] {
    while (!stop.load()) {
      st->read("busy", [&](Tx& tx) { (void)tx.count("log"); });
      ++reads;
    }
  });
  for (int m = 0; m < 6; ++m) {
    while (acked_busy.load() < 40 * (m + 1)) std::this_thread::yield();
    st->move_tenant("busy", m % 2 == 0 ? Isolation::Database : Isolation::Shared);
  }
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(st->isolation("busy"), Isolation::Shared);
  st->read("busy", [&](Tx& tx) {
    EXPECT_EQ(tx.count("log"), static_cast<size_t>(acked_busy.load()));
    EXPECT_EQ(tx.count("role"), static_cast<size_t>(acked_fanout.load()));
    // Within one writer, order is kept.
    std::map<int, int> last;
    for (const auto& r : tx.list("log", all())) {
      const int w = r.id[1] - '0';
      const int i = r.data["i"].get<int>();
      if (last.count(w)) {
        EXPECT_EQ(i, last[w] + 1);
      }
      last[w] = i;
    }
  });
  st->read("calm", [&](Tx& tx) { EXPECT_EQ(tx.count("log"), static_cast<size_t>(acked_calm)); });
  st->read("cp", [&](Tx& tx) { EXPECT_EQ(tx.count("role"), static_cast<size_t>(acked_fanout)); });
  EXPECT_GT(reads.load(), 0);
}

TEST(RoutingMove, WritesDuringAMoveWaitAndAreNotLostFile) {
  TempDir dir;
  writes_during_moves(dir.file("ks.db"));
}

TEST(RoutingMove, WritesDuringAMoveWaitAndAreNotLostMemory) { writes_during_moves(":memory:"); }

}  // namespace
}  // namespace ks::store
