// Unit tests for the SQLite store (core/store/sqlite).
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/store/store.h"
#include "tests/unit/support/temp_dir.h"

namespace ks::store {
namespace {

namespace fs = std::filesystem;
using ks::test::TempDir;

// Runs a single-value query on a raw connection (for checking the schema from outside).
int64_t raw_int(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &st, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  int64_t v = -1;
  if (st && sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

std::string raw_text(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &st, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  std::string v;
  if (st && sqlite3_step(st) == SQLITE_ROW) {
    v = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

std::vector<std::string> ids(const std::vector<Record>& rs) {
  std::vector<std::string> out;
  for (const auto& r : rs) out.push_back(r.id);
  return out;
}

std::vector<std::string> tos(const std::vector<Link>& ls) {
  std::vector<std::string> out;
  for (const auto& l : ls) out.push_back(l.to);
  return out;
}

ListQuery q_all() {
  ListQuery q;
  q.limit = 1000;
  return q;
}

class StoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<Store> store_ = open_sqlite(":memory:");
};

// ---------------------------------------------------------------------------------------------
// Opening and migrations

TEST(StoreOpen, MigrationsAreIdempotent) {
  TempDir dir;
  const std::string path = dir.file("ks.db");
  {
    auto s = open_sqlite(path);
    EXPECT_EQ(s->schema_version(), 4);
    s->write("acme", [](Tx& tx) { tx.insert("user", "u1", {{"name", "Ann"}}); });
  }
  {
    auto s = open_sqlite(path);
    EXPECT_EQ(s->schema_version(), 4);
    s->read("acme", [](Tx& tx) {
      auto r = tx.get("user", "u1");
      ASSERT_TRUE(r);
      EXPECT_EQ(r->data["name"], "Ann");
    });
  }
  {
    auto s = open_sqlite(path);  // a third open changes nothing either
    EXPECT_EQ(s->schema_version(), 4);
  }
  EXPECT_EQ(raw_int(path, "SELECT count(*) FROM schema_migrations"), 4);
  EXPECT_EQ(raw_int(path, "SELECT max(version) FROM schema_migrations"), 4);
  EXPECT_EQ(raw_text(path, "PRAGMA journal_mode"), "wal");
}

TEST(StoreOpen, MemoryWorksAndIsPrivate) {
  auto a = open_sqlite(":memory:");
  auto b = open_sqlite(":memory:");
  EXPECT_EQ(a->schema_version(), 4);
  a->write("t", [](Tx& tx) { tx.insert("k", "x", {{"v", 1}}); });
  a->read("t", [](Tx& tx) { EXPECT_TRUE(tx.get("k", "x")); });
  b->read("t", [](Tx& tx) { EXPECT_FALSE(tx.get("k", "x")); });
}

TEST(StoreOpen, NewerSchemaIsRefused) {
  TempDir dir;
  const std::string path = dir.file("ks.db");
  open_sqlite(path).reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "INSERT INTO schema_migrations (version) VALUES (999)", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  EXPECT_THROW(open_sqlite(path), StoreError);
}

// A database at schema 3 (state triggers without hooks) is brought to 4: its triggers are
// replaced and hook writes raise the state version from then on.
TEST(StoreOpen, MigrationFourAddsHooksToTheStateKinds) {
  TempDir dir;
  const std::string path = dir.file("ks.db");
  open_sqlite(path).reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "DELETE FROM schema_migrations WHERE version = 4", nullptr, nullptr,
                         nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto s = open_sqlite(path);
  EXPECT_EQ(s->schema_version(), 4);
  EXPECT_EQ(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"), 3);
  s->write("acme", [](Tx& tx) { tx.insert("hook", "h1", {{"code", ""}}); });
  s->read("acme", [](Tx& tx) { EXPECT_EQ(tx.state_version(), 1); });
}

TEST(StoreOpen, UnopenablePathThrowsStoreError) {
  EXPECT_THROW(open_sqlite("/nonexistent-dir-ks/sub/ks.db"), StoreError);
}

// ---------------------------------------------------------------------------------------------
// Records

TEST_F(StoreTest, InsertGetUpdateRemove) {
  store_->write("acme", [](Tx& tx) {
    EXPECT_EQ(tx.tenant(), "acme");
    Record r = tx.insert("user", "u1", {{"email", "a@x.io"}, {"n", 1}}, "a@x.io");
    EXPECT_EQ(r.id, "u1");
    EXPECT_GT(r.seq, 0);
    EXPECT_EQ(r.data["n"], 1);
  });
  int64_t seq = 0;
  store_->read("acme", [&](Tx& tx) {
    auto r = tx.get("user", "u1");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->id, "u1");
    EXPECT_EQ(r->data["email"], "a@x.io");
    seq = r->seq;
    auto f = tx.find("user", "a@x.io");
    ASSERT_TRUE(f);
    EXPECT_EQ(f->id, "u1");
    EXPECT_EQ(f->seq, seq);
    EXPECT_FALSE(tx.get("user", "nope"));
    EXPECT_FALSE(tx.get("client", "u1"));  // kinds are separate
    EXPECT_FALSE(tx.find("user", "nobody@x.io"));
    EXPECT_FALSE(tx.find("user", ""));
  });
  store_->write("acme", [&](Tx& tx) {
    EXPECT_TRUE(tx.update("user", "u1", {{"email", "a@x.io"}, {"n", 2}}, "a@x.io"));
    EXPECT_FALSE(tx.update("user", "missing", {{"n", 3}}));
    auto r = tx.get("user", "u1");  // a write tx sees its own writes
    ASSERT_TRUE(r);
    EXPECT_EQ(r->data["n"], 2);
    EXPECT_EQ(r->seq, seq);  // update keeps the original seq
  });
  store_->write("acme", [](Tx& tx) {
    EXPECT_TRUE(tx.remove("user", "u1"));
    EXPECT_FALSE(tx.remove("user", "u1"));
  });
  store_->read("acme", [](Tx& tx) {
    EXPECT_FALSE(tx.get("user", "u1"));
    EXPECT_FALSE(tx.find("user", "a@x.io"));
  });
}

TEST_F(StoreTest, DocumentsRoundTrip) {
  Json doc = {{"s", "h\u00e9llo \"q\" \n"},
              {"i", -42},
              {"f", 1.5},
              {"b", true},
              {"n", nullptr},
              {"a", Json::array({1, "two", Json::object()})},
              {"o", {{"deep", {{"x", 1}}}}}};
  store_->write("t", [&](Tx& tx) {
    tx.insert("k", "doc", doc);
    tx.insert("k", "", Json::object());  // an empty id is still an id
    tx.insert("k", "arr", Json::array({1, 2}));
  });
  store_->read("t", [&](Tx& tx) {
    EXPECT_EQ(tx.get("k", "doc")->data, doc);
    EXPECT_EQ(tx.get("k", "")->data, Json::object());
    EXPECT_EQ(tx.get("k", "arr")->data, Json::array({1, 2}));
  });
}

TEST_F(StoreTest, InsertConflictOnDuplicateId) {
  store_->write("t", [](Tx& tx) { tx.insert("user", "u1", {{"v", 1}}); });
  EXPECT_THROW(store_->write("t", [](Tx& tx) { tx.insert("user", "u1", {{"v", 2}}); }), Conflict);
  store_->read("t", [](Tx& tx) { EXPECT_EQ(tx.get("user", "u1")->data["v"], 1); });
  // The same id under another kind is fine.
  store_->write("t", [](Tx& tx) { tx.insert("client", "u1", {{"v", 3}}); });
}

TEST_F(StoreTest, InsertConflictOnDuplicateUniqueKey) {
  store_->write("t", [](Tx& tx) { tx.insert("user", "u1", {{"v", 1}}, "a@x.io"); });
  EXPECT_THROW(store_->write("t",
                             [](Tx& tx) {
                               tx.insert("user", "u2", {{"v", 2}}, "a@x.io");
                             }),
               Conflict);
  store_->write("t", [](Tx& tx) {
    // Empty keys are "no key" and never clash.
    tx.insert("user", "u3", {{"v", 3}});
    tx.insert("user", "u4", {{"v", 4}}, "");
    // The same key under another kind is fine.
    tx.insert("rs", "r1", {{"v", 5}}, "a@x.io");
  });
  store_->read("t", [](Tx& tx) {
    EXPECT_FALSE(tx.get("user", "u2"));
    EXPECT_EQ(tx.count("user"), 3u);
  });
}

TEST_F(StoreTest, ConflictInsideTxLeavesTheTxUsable) {
  store_->write("t", [](Tx& tx) {
    tx.insert("user", "u1", {{"v", 1}}, "k1");
    EXPECT_THROW(tx.insert("user", "u1", {{"v", 2}}), Conflict);
    EXPECT_THROW(tx.insert("user", "u2", {{"v", 2}}, "k1"), Conflict);
    tx.insert("user", "u2", {{"v", 2}}, "k2");
  });
  store_->read("t", [](Tx& tx) {
    EXPECT_EQ(tx.count("user"), 2u);
    EXPECT_EQ(tx.get("user", "u1")->data["v"], 1);
  });
}

TEST_F(StoreTest, UpdateChangesUniqueKey) {
  store_->write("t", [](Tx& tx) {
    tx.insert("user", "u1", {{"v", 1}}, "old@x.io");
    tx.insert("user", "u2", {{"v", 2}}, "other@x.io");
  });
  store_->write("t", [](Tx& tx) { EXPECT_TRUE(tx.update("user", "u1", {{"v", 10}}, "new@x.io")); });
  store_->read("t", [](Tx& tx) {
    EXPECT_FALSE(tx.find("user", "old@x.io"));
    ASSERT_TRUE(tx.find("user", "new@x.io"));
    EXPECT_EQ(tx.find("user", "new@x.io")->id, "u1");
    EXPECT_EQ(tx.find("user", "new@x.io")->data["v"], 10);
  });
  // The freed key can be taken; a taken key cannot.
  store_->write("t", [](Tx& tx) { tx.insert("user", "u3", {{"v", 3}}, "old@x.io"); });
  EXPECT_THROW(store_->write("t",
                             [](Tx& tx) {
                               tx.update("user", "u1", {{"v", 11}}, "other@x.io");
                             }),
               Conflict);
  store_->read("t", [](Tx& tx) { EXPECT_EQ(tx.get("user", "u1")->data["v"], 10); });
  // Updating without a key clears it.
  store_->write("t", [](Tx& tx) { EXPECT_TRUE(tx.update("user", "u1", {{"v", 12}})); });
  store_->read("t", [](Tx& tx) {
    EXPECT_FALSE(tx.find("user", "new@x.io"));
    EXPECT_EQ(tx.get("user", "u1")->data["v"], 12);
  });
  // Keeping one's own key is not a clash.
  store_->write("t", [](Tx& tx) {
    EXPECT_TRUE(tx.update("user", "u2", {{"v", 3}}, "other@x.io"));
  });
}

// ---------------------------------------------------------------------------------------------
// list / count

class ListTest : public StoreTest {
 protected:
  void SetUp() override {
    store_->write("t", [](Tx& tx) {
      for (int i = 0; i < 10; ++i) {
        tx.insert("user", "u" + std::to_string(i),
                  {{"i", i}, {"color", i % 2 ? "red" : "blue"}, {"n", i % 2}});
      }
      tx.insert("client", "c0", {{"color", "red"}});
    });
  }
};

TEST_F(ListTest, OrderedBySeqWithOffsetAndLimit) {
  store_->read("t", [](Tx& tx) {
    auto all = tx.list("user", q_all());
    ASSERT_EQ(all.size(), 10u);
    for (size_t i = 0; i < all.size(); ++i) {
      EXPECT_EQ(all[i].id, "u" + std::to_string(i));
      EXPECT_EQ(all[i].data["i"], static_cast<int>(i));
      if (i) {
        EXPECT_GT(all[i].seq, all[i - 1].seq);
      }
    }
    ListQuery q;
    EXPECT_EQ(tx.list("user", q).size(), 10u);  // default limit 50
    q.offset = 3;
    q.limit = 4;
    EXPECT_EQ(ids(tx.list("user", q)), (std::vector<std::string>{"u3", "u4", "u5", "u6"}));
    q.offset = 8;
    EXPECT_EQ(ids(tx.list("user", q)), (std::vector<std::string>{"u8", "u9"}));
    q.offset = 10;
    EXPECT_TRUE(tx.list("user", q).empty());
    q.offset = 0;
    q.limit = 0;
    EXPECT_TRUE(tx.list("user", q).empty());
    q.limit = std::numeric_limits<size_t>::max();
    EXPECT_EQ(tx.list("user", q).size(), 10u);
    EXPECT_TRUE(tx.list("nothing", q_all()).empty());
  });
}

TEST_F(ListTest, UpdateKeepsPosition) {
  store_->write("t", [](Tx& tx) { tx.update("user", "u2", {{"i", 2}, {"color", "green"}}); });
  store_->read("t", [](Tx& tx) { EXPECT_EQ(tx.list("user", q_all())[2].id, "u2"); });
}

TEST_F(ListTest, AfterSeqCheckpointPagination) {
  store_->read("t", [](Tx& tx) {
    ListQuery q;
    q.limit = 3;
    std::vector<std::string> seen;
    for (;;) {
      auto page = tx.list("user", q);
      if (page.empty()) break;
      for (const auto& r : page) seen.push_back(r.id);
      q.after_seq = page.back().seq;
    }
    ASSERT_EQ(seen.size(), 10u);
    for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], "u" + std::to_string(i));

    auto all = tx.list("user", q_all());
    ListQuery c;
    c.after_seq = all[6].seq;
    EXPECT_EQ(tx.count("user", c), 3u);
    c.offset = 1;  // count ignores offset/limit
    c.limit = 1;
    EXPECT_EQ(tx.count("user", c), 3u);
  });
}

TEST_F(ListTest, FilterOnStringMember) {
  store_->read("t", [](Tx& tx) {
    ListQuery q = q_all();
    q.field = "color";
    q.value = "red";
    EXPECT_EQ(ids(tx.list("user", q)), (std::vector<std::string>{"u1", "u3", "u5", "u7", "u9"}));
    EXPECT_EQ(tx.count("user", q), 5u);
    q.limit = 2;
    q.offset = 1;
    EXPECT_EQ(ids(tx.list("user", q)), (std::vector<std::string>{"u3", "u5"}));
    EXPECT_EQ(tx.count("user", q), 5u);
    q.after_seq = tx.get("user", "u5")->seq;
    q.offset = 0;
    EXPECT_EQ(ids(tx.list("user", q)), (std::vector<std::string>{"u7", "u9"}));
    EXPECT_EQ(tx.count("user", q), 2u);

    ListQuery m = q_all();
    m.field = "color";
    m.value = "purple";
    EXPECT_TRUE(tx.list("user", m).empty());
    EXPECT_EQ(tx.count("user", m), 0u);
    m.field = "missing";
    m.value = "";
    EXPECT_EQ(tx.count("user", m), 0u);
    // Only strings match: "1" is not the number 1.
    m.field = "n";
    m.value = "1";
    EXPECT_EQ(tx.count("user", m), 0u);
    EXPECT_EQ(tx.count("user"), 10u);
    EXPECT_EQ(tx.count("client"), 1u);
    EXPECT_EQ(tx.count("nothing"), 0u);
  });
}

TEST_F(ListTest, FilterFieldNameIsValidated) {
  store_->read("t", [](Tx& tx) {
    for (const char* bad : {"a.b", "a'b", "a\"b", "$", "color) OR 1=1 --", "a b", "a[0]", "é"}) {
      ListQuery q;
      q.field = bad;
      q.value = "x";
      EXPECT_THROW(tx.list("user", q), std::invalid_argument) << bad;
      EXPECT_THROW(tx.count("user", q), std::invalid_argument) << bad;
    }
    ListQuery ok;
    ok.field = "Color_2";
    ok.value = "x";
    EXPECT_NO_THROW(tx.list("user", ok));
    EXPECT_EQ(tx.count("user", ok), 0u);
  });
}

// ---------------------------------------------------------------------------------------------
// Links

TEST_F(StoreTest, Links) {
  store_->write("t", [](Tx& tx) {
    EXPECT_TRUE(tx.link("role_permission", "r1", "p1"));
    EXPECT_TRUE(tx.link("role_permission", "r1", "p2", {{"w", 2}}));
    EXPECT_TRUE(tx.link("role_permission", "r1", "p3"));
    EXPECT_TRUE(tx.link("role_permission", "r2", "p1"));
    EXPECT_TRUE(tx.link("org_member", "r1", "p1"));  // another relation
    EXPECT_FALSE(tx.link("role_permission", "r1", "p1", {{"again", true}}));
  });
  store_->read("t", [](Tx& tx) {
    EXPECT_TRUE(tx.linked("role_permission", "r1", "p1"));
    EXPECT_FALSE(tx.linked("role_permission", "p1", "r1"));
    EXPECT_FALSE(tx.linked("role_permission", "r2", "p2"));
    auto from = tx.links_from("role_permission", "r1", q_all());
    ASSERT_EQ(from.size(), 3u);
    // Re-linking keeps the original position but replaces the data.
    EXPECT_EQ(tos(from), (std::vector<std::string>{"p1", "p2", "p3"}));
    EXPECT_EQ(from[0].from, "r1");
    EXPECT_EQ(from[0].data, (Json{{"again", true}}));
    EXPECT_EQ(from[1].data, (Json{{"w", 2}}));
    EXPECT_TRUE(from[2].data.is_null());
    EXPECT_LT(from[0].seq, from[1].seq);
    EXPECT_LT(from[1].seq, from[2].seq);

    auto to = tx.links_to("role_permission", "p1", q_all());
    ASSERT_EQ(to.size(), 2u);
    EXPECT_EQ(to[0].from, "r1");
    EXPECT_EQ(to[1].from, "r2");
    EXPECT_EQ(to[1].to, "p1");

    ListQuery q;
    q.offset = 1;
    q.limit = 1;
    EXPECT_EQ(tos(tx.links_from("role_permission", "r1", q)), (std::vector<std::string>{"p2"}));
    q.offset = 0;
    q.limit = 10;
    q.after_seq = from[1].seq;
    EXPECT_EQ(tos(tx.links_from("role_permission", "r1", q)), (std::vector<std::string>{"p3"}));
    q.limit = 0;
    EXPECT_TRUE(tx.links_from("role_permission", "r1", q).empty());

    EXPECT_EQ(tx.count_links_from("role_permission", "r1"), 3u);
    EXPECT_EQ(tx.count_links_to("role_permission", "p1"), 2u);
    EXPECT_EQ(tx.count_links_from("org_member", "r1"), 1u);
    EXPECT_EQ(tx.count_links_from("role_permission", "nobody"), 0u);
  });
  store_->write("t", [](Tx& tx) {
    EXPECT_FALSE(tx.link("role_permission", "r1", "p2"));  // existed: data back to null
    EXPECT_TRUE(tx.links_from("role_permission", "r1", q_all())[1].data.is_null());
  });
  store_->write("t", [](Tx& tx) {
    EXPECT_TRUE(tx.unlink("role_permission", "r2", "p1"));
    EXPECT_FALSE(tx.unlink("role_permission", "r2", "p1"));
    EXPECT_EQ(tx.unlink_from("role_permission", "r1"), 3u);
    EXPECT_EQ(tx.unlink_from("role_permission", "r1"), 0u);
    EXPECT_EQ(tx.count_links_from("org_member", "r1"), 1u);
    EXPECT_TRUE(tx.link("role_permission", "a", "p9"));
    EXPECT_TRUE(tx.link("role_permission", "b", "p9"));
    EXPECT_TRUE(tx.link("role_permission", "b", "p8"));
    EXPECT_EQ(tx.unlink_to("role_permission", "p9"), 2u);
    EXPECT_EQ(tx.count_links_from("role_permission", "b"), 1u);
  });
}

TEST_F(StoreTest, RelinkReturnsFalseAndReplacesData) {
  store_->write("t", [](Tx& tx) {
    EXPECT_TRUE(tx.link("r", "a", "b", {{"x", 1}}));
    EXPECT_FALSE(tx.link("r", "a", "b", {{"x", 2}}));
    EXPECT_EQ(tx.links_from("r", "a", q_all())[0].data["x"], 2);
    EXPECT_FALSE(tx.link("r", "a", "b"));
    EXPECT_TRUE(tx.links_from("r", "a", q_all())[0].data.is_null());
  });
}

TEST_F(StoreTest, SeqStrictlyIncreasesAcrossKindsAndLinks) {
  std::vector<int64_t> seqs;
  store_->write("t", [&](Tx& tx) {
    seqs.push_back(tx.insert("a", "1", Json::object()).seq);
    tx.link("r", "x", "y");
    seqs.push_back(tx.links_from("r", "x", q_all())[0].seq);
    seqs.push_back(tx.insert("b", "1", Json::object()).seq);
    seqs.push_back(tx.scope("other").insert("a", "1", Json::object()).seq);
  });
  store_->write("t", [&](Tx& tx) {
    tx.remove("b", "1");
    seqs.push_back(tx.insert("b", "2", Json::object()).seq);  // never reuses a removed seq
  });
  for (size_t i = 1; i < seqs.size(); ++i) EXPECT_GT(seqs[i], seqs[i - 1]);
}

// ---------------------------------------------------------------------------------------------
// Walking a whole tenant (export) and restoring it (import)

std::vector<RecordEntry> walk_records(Tx& tx) {
  std::vector<RecordEntry> out;
  tx.for_each_record([&](const RecordEntry& e) { out.push_back(e); });
  return out;
}

std::vector<LinkEntry> walk_links(Tx& tx) {
  std::vector<LinkEntry> out;
  tx.for_each_link([&](const LinkEntry& e) { out.push_back(e); });
  return out;
}

TEST_F(StoreTest, WalksEveryRecordAndLinkOfTheTenantInSeqOrder) {
  store_->write("acme", [](Tx& tx) {
    tx.insert("user", "u1", {{"email", "a@x.io"}}, "a@x.io");
    tx.link("org_member", "o1", "u1", {{"since", 1}});
    tx.insert("client", "c1", {{"name", "app"}});
    tx.insert("user", "u2", {{"email", "b@x.io"}}, "b@x.io");
    tx.link("role_user", "r1", "u2");
    tx.insert("signing_key", "k1", {{"kid", "k1"}}, "current");
    tx.update("user", "u1", {{"email", "a2@x.io"}}, "a2@x.io");  // keeps its place
    tx.remove("client", "c1");
  });
  store_->write("globex", [](Tx& tx) {
    tx.insert("user", "u1", {{"email", "g@x.io"}}, "g@x.io");
    tx.link("org_member", "o1", "u1");
  });
  store_->read("acme", [](Tx& tx) {
    const auto rs = walk_records(tx);
    ASSERT_EQ(rs.size(), 3u);
    EXPECT_EQ(rs[0].kind, "user");
    EXPECT_EQ(rs[0].record.id, "u1");
    EXPECT_EQ(rs[0].unique_key, "a2@x.io");
    EXPECT_EQ(rs[0].record.data["email"], "a2@x.io");
    EXPECT_EQ(rs[0].record.seq, tx.get("user", "u1")->seq);
    EXPECT_EQ(rs[1].record.id, "u2");
    EXPECT_EQ(rs[2].kind, "signing_key");
    EXPECT_EQ(rs[2].unique_key, "current");
    for (size_t i = 1; i < rs.size(); ++i) EXPECT_GT(rs[i].record.seq, rs[i - 1].record.seq);

    const auto ls = walk_links(tx);
    ASSERT_EQ(ls.size(), 2u);
    EXPECT_EQ(ls[0].rel, "org_member");
    EXPECT_EQ(ls[0].link.from, "o1");
    EXPECT_EQ(ls[0].link.to, "u1");
    EXPECT_EQ(ls[0].link.data, Json({{"since", 1}}));
    EXPECT_EQ(ls[1].rel, "role_user");
    EXPECT_TRUE(ls[1].link.data.is_null());
    EXPECT_LT(ls[0].link.seq, ls[1].link.seq);
  });
  store_->read("nobody", [](Tx& tx) {
    EXPECT_TRUE(walk_records(tx).empty());
    EXPECT_TRUE(walk_links(tx).empty());
  });
}

TEST_F(StoreTest, WalkedTenantRestoresThroughInsertAndLink) {
  store_->write("acme", [](Tx& tx) {
    tx.insert("user", "u1", {{"email", "a@x.io"}}, "a@x.io");
    tx.insert("user", "u2", {{"n", 2}});
    tx.insert("role", "r1", {{"name", "admin"}}, "admin");
    tx.link("user_role", "u1", "r1", {{"x", "y"}});
    tx.link("user_role", "u2", "r1");
  });
  // Copy acme into "copy" inside one transaction, reading while writing another tenant.
  store_->write("acme", [](Tx& tx) {
    Tx& copy = tx.scope("copy");
    for (const auto& e : walk_records(tx))
      copy.insert(e.kind, e.record.id, e.record.data, e.unique_key);
    for (const auto& e : walk_links(tx)) copy.link(e.rel, e.link.from, e.link.to, e.link.data);
  });
  store_->read("copy", [](Tx& tx) {
    EXPECT_EQ(tx.find("user", "a@x.io")->id, "u1");
    EXPECT_EQ(tx.find("role", "admin")->id, "r1");
    EXPECT_EQ(tx.get("user", "u2")->data["n"], 2);
    EXPECT_EQ(ids(tx.list("user", q_all())), (std::vector<std::string>{"u1", "u2"}));
    EXPECT_EQ(tx.links_from("user_role", "u1", q_all())[0].data["x"], "y");
    EXPECT_TRUE(tx.linked("user_role", "u2", "r1"));
    EXPECT_EQ(walk_records(tx).size(), 3u);
    EXPECT_EQ(walk_links(tx).size(), 2u);
  });
}

TEST_F(StoreTest, ExceptionFromAWalkEndsItAndLeavesTheTxUsable) {
  store_->write("acme", [](Tx& tx) {
    for (int i = 0; i < 5; ++i) tx.insert("user", "u" + std::to_string(i), Json::object());
    tx.link("r", "a", "b");
  });
  store_->read("acme", [](Tx& tx) {
    int seen = 0;
    EXPECT_THROW(tx.for_each_record([&](const RecordEntry&) {
      if (++seen == 2) throw std::runtime_error("stop");
    }),
                 std::runtime_error);
    EXPECT_EQ(seen, 2);
    EXPECT_THROW(tx.for_each_link([](const LinkEntry&) { throw std::runtime_error("stop"); }),
                 std::runtime_error);
    // The statements were reset: the walks start over from the first row.
    EXPECT_EQ(walk_records(tx).size(), 5u);
    EXPECT_EQ(walk_links(tx).size(), 1u);
  });
}

// ---------------------------------------------------------------------------------------------
// Tenancy

TEST_F(StoreTest, TenantIsolation) {
  store_->write("acme", [](Tx& tx) {
    tx.insert("user", "u1", {{"t", "acme"}, {"c", "red"}}, "same@x.io");
    tx.insert("user", "u2", {{"t", "acme"}});
    tx.link("org_member", "o1", "u1", {{"t", "acme"}});
  });
  store_->write("globex", [](Tx& tx) {
    // Same id and unique key as in acme: independent.
    tx.insert("user", "u1", {{"t", "globex"}, {"c", "red"}}, "same@x.io");
    tx.link("org_member", "o1", "u1", {{"t", "globex"}});
    EXPECT_TRUE(tx.link("org_member", "o1", "u2"));
  });
  store_->read("globex", [](Tx& tx) {
    EXPECT_EQ(tx.get("user", "u1")->data["t"], "globex");
    EXPECT_EQ(tx.find("user", "same@x.io")->data["t"], "globex");
    EXPECT_FALSE(tx.get("user", "u2"));
    EXPECT_EQ(tx.count("user"), 1u);
    EXPECT_EQ(ids(tx.list("user", q_all())), (std::vector<std::string>{"u1"}));
    ListQuery q = q_all();
    q.field = "c";
    q.value = "red";
    EXPECT_EQ(tx.count("user", q), 1u);
    EXPECT_EQ(tx.count_links_from("org_member", "o1"), 2u);
    EXPECT_EQ(tx.count_links_to("org_member", "u1"), 1u);
    EXPECT_EQ(tx.links_to("org_member", "u1", q_all())[0].data["t"], "globex");
  });
  store_->write("acme", [](Tx& tx) {
    EXPECT_EQ(tx.get("user", "u1")->data["t"], "acme");
    EXPECT_EQ(tx.count("user"), 2u);
    EXPECT_EQ(tx.count_links_from("org_member", "o1"), 1u);
    EXPECT_FALSE(tx.linked("org_member", "o1", "u2"));
    // Writes in acme never touch globex rows with the same keys.
    EXPECT_EQ(tx.unlink_from("org_member", "o1"), 1u);
    EXPECT_TRUE(tx.remove("user", "u1"));
    EXPECT_FALSE(tx.update("user", "u9", Json::object()));
  });
  store_->read("globex", [](Tx& tx) {
    EXPECT_TRUE(tx.get("user", "u1"));
    EXPECT_EQ(tx.count_links_from("org_member", "o1"), 2u);
  });
  store_->read("nobody", [](Tx& tx) {
    EXPECT_EQ(tx.count("user"), 0u);
    EXPECT_FALSE(tx.find("user", "same@x.io"));
    EXPECT_TRUE(tx.links_from("org_member", "o1", q_all()).empty());
  });
}

TEST_F(StoreTest, PurgeTenant) {
  for (const char* t : {"acme", "globex"}) {
    store_->write(t, [](Tx& tx) {
      tx.insert("user", "u1", Json::object(), "k");
      tx.insert("client", "c1", Json::object());
      tx.link("r", "a", "b");
    });
  }
  store_->write("acme", [](Tx& tx) {
    tx.purge_tenant();
    EXPECT_EQ(tx.count("user"), 0u);
  });
  store_->read("acme", [](Tx& tx) {
    EXPECT_EQ(tx.count("user"), 0u);
    EXPECT_EQ(tx.count("client"), 0u);
    EXPECT_FALSE(tx.find("user", "k"));
    EXPECT_EQ(tx.count_links_from("r", "a"), 0u);
  });
  store_->read("globex", [](Tx& tx) {
    EXPECT_EQ(tx.count("user"), 1u);
    EXPECT_EQ(tx.count("client"), 1u);
    EXPECT_TRUE(tx.linked("r", "a", "b"));
  });
  // The tenant can be re-populated afterwards with the same ids and keys.
  store_->write("acme", [](Tx& tx) { tx.insert("user", "u1", Json::object(), "k"); });
}

TEST_F(StoreTest, ScopeSharesTheTransaction) {
  store_->write("cp", [](Tx& tx) {
    Tx& a = tx.scope("acme");
    Tx& b = tx.scope("globex");
    EXPECT_EQ(a.tenant(), "acme");
    EXPECT_EQ(b.tenant(), "globex");
    EXPECT_EQ(&a, &tx.scope("acme"));  // cached per tenant
    EXPECT_EQ(&tx, &tx.scope("cp"));
    EXPECT_EQ(&tx, &a.scope("cp"));
    EXPECT_EQ(&b, &a.scope("globex"));
    tx.insert("role", "r1", {{"name", "admin"}});
    a.insert("role", "r1", {{"name", "admin"}, {"is_system", true}});
    b.insert("role", "r1", {{"name", "admin"}, {"is_system", true}});
    // Each scope sees its own tenant only, including uncommitted writes.
    EXPECT_EQ(a.count("role"), 1u);
    EXPECT_TRUE(a.get("role", "r1")->data["is_system"]);
    EXPECT_FALSE(tx.get("role", "r1")->data.contains("is_system"));
  });
  store_->read("acme", [](Tx& tx) { EXPECT_TRUE(tx.get("role", "r1")); });
  store_->read("globex", [](Tx& tx) { EXPECT_TRUE(tx.get("role", "r1")); });

  // A failure anywhere in the fan-out rolls back every tenant.
  EXPECT_THROW(store_->write("cp",
                             [](Tx& tx) {
                               tx.insert("role", "r2", Json::object());
                               tx.scope("acme").insert("role", "r2", Json::object());
                               tx.scope("globex").insert("role", "r1", Json::object());  // clash
                             }),
               Conflict);
  for (const char* t : {"cp", "acme", "globex"}) {
    store_->read(t, [&](Tx& tx) { EXPECT_FALSE(tx.get("role", "r2")) << t; });
  }
  // A read Tx's scopes are read-only too.
  store_->read("cp", [](Tx& tx) {
    EXPECT_THROW(tx.scope("acme").insert("role", "r3", Json::object()), StoreError);
    EXPECT_TRUE(tx.scope("acme").get("role", "r1"));
  });
}

// ---------------------------------------------------------------------------------------------
// Transactions

TEST_F(StoreTest, RollbackOnException) {
  store_->write("t", [](Tx& tx) { tx.insert("user", "keep", {{"v", 1}}); });
  struct Boom {};
  EXPECT_THROW(store_->write("t",
                             [](Tx& tx) {
                               tx.insert("user", "u1", {{"v", 1}});
                               tx.update("user", "keep", {{"v", 2}});
                               tx.link("r", "a", "b");
                               tx.remove("user", "keep");
                               throw Boom{};
                             }),
               Boom);
  store_->read("t", [](Tx& tx) {
    EXPECT_FALSE(tx.get("user", "u1"));
    ASSERT_TRUE(tx.get("user", "keep"));
    EXPECT_EQ(tx.get("user", "keep")->data["v"], 1);
    EXPECT_FALSE(tx.linked("r", "a", "b"));
  });
  // The store keeps working afterwards (the connection was rolled back and reused).
  store_->write("t", [](Tx& tx) { tx.insert("user", "u1", {{"v", 1}}); });
  store_->read("t", [](Tx& tx) { EXPECT_TRUE(tx.get("user", "u1")); });
}

TEST_F(StoreTest, ExceptionInReadPropagates) {
  EXPECT_THROW(store_->read("t", [](Tx&) { throw std::logic_error("x"); }), std::logic_error);
  store_->read("t", [](Tx& tx) { EXPECT_EQ(tx.count("user"), 0u); });
}

TEST_F(StoreTest, ReadTxRejectsWrites) {
  store_->write("t", [](Tx& tx) {
    tx.insert("user", "u1", Json::object());
    tx.link("r", "a", "b");
  });
  store_->read("t", [](Tx& tx) {
    EXPECT_THROW(tx.insert("user", "u2", Json::object()), StoreError);
    EXPECT_THROW(tx.update("user", "u1", {{"x", 1}}), StoreError);
    EXPECT_THROW(tx.remove("user", "u1"), StoreError);
    EXPECT_THROW(tx.link("r", "a", "c"), StoreError);
    EXPECT_THROW(tx.unlink("r", "a", "b"), StoreError);
    EXPECT_THROW(tx.unlink_from("r", "a"), StoreError);
    EXPECT_THROW(tx.unlink_to("r", "b"), StoreError);
    EXPECT_THROW(tx.purge_tenant(), StoreError);
    // Reads keep working after a refused write.
    EXPECT_TRUE(tx.get("user", "u1"));
  });
  store_->read("t", [](Tx& tx) {
    EXPECT_EQ(tx.get("user", "u1")->data, Json::object());
    EXPECT_EQ(tx.count("user"), 1u);
    EXPECT_TRUE(tx.linked("r", "a", "b"));
  });
}

TEST_F(StoreTest, NestedTransactionOnSameThreadIsRefused) {
  store_->write("t", [&](Tx&) {
    EXPECT_THROW(store_->read("t", [](Tx&) {}), StoreError);
    EXPECT_THROW(store_->write("u", [](Tx&) {}), StoreError);
  });
  store_->read("t", [&](Tx&) { EXPECT_THROW(store_->read("t", [](Tx&) {}), StoreError); });
  // Another store is fine.
  auto other = open_sqlite(":memory:");
  store_->write("t", [&](Tx&) { other->write("t", [](Tx& tx) { tx.insert("k", "1", 1); }); });
}

TEST_F(StoreTest, UnserializableDocumentIsInvalidArgument) {
  store_->write("t", [](Tx& tx) {
    EXPECT_THROW(tx.insert("k", "1", Json("\xff\xfe")), std::invalid_argument);
    EXPECT_FALSE(tx.get("k", "1"));
  });
}

// ---------------------------------------------------------------------------------------------
// Files: concurrency, durability

TEST(StoreFile, ConcurrentWriters) {
  TempDir dir;
  auto store = open_sqlite(dir.file("ks.db"));
  constexpr int kThreads = 4;
  constexpr int kPerThread = 200;
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  // Readers run alongside and must always see a consistent snapshot.
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      while (!stop) {
        try {
          store->read("t", [&](Tx& tx) {
            size_t n = tx.count("user");
            auto all = tx.list("user", ListQuery::first(100000));
            if (all.size() != n) ++failures;
          });
        } catch (...) {
          ++failures;
        }
      }
    });
  }
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        try {
          store->write("t", [&](Tx& tx) {
            std::string id = std::to_string(t) + "-" + std::to_string(i);
            tx.insert("user", id, {{"t", t}, {"i", i}}, "key-" + id);
            tx.link("by_thread", std::to_string(t), id);
          });
        } catch (...) {
          ++failures;
        }
      }
    });
  }
  for (auto& w : writers) w.join();
  stop = true;
  for (auto& r : readers) r.join();
  EXPECT_EQ(failures, 0);
  store->read("t", [&](Tx& tx) {
    EXPECT_EQ(tx.count("user"), size_t{kThreads * kPerThread});
    auto all = tx.list("user", ListQuery::first(100000));
    ASSERT_EQ(all.size(), size_t{kThreads * kPerThread});
    std::set<int64_t> seqs;
    for (size_t i = 0; i < all.size(); ++i) {
      seqs.insert(all[i].seq);
      if (i) {
        EXPECT_GT(all[i].seq, all[i - 1].seq);
      }
    }
    EXPECT_EQ(seqs.size(), all.size());
    for (int t = 0; t < kThreads; ++t) {
      EXPECT_EQ(tx.count_links_from("by_thread", std::to_string(t)), size_t{kPerThread});
      auto ls = tx.links_from("by_thread", std::to_string(t), ListQuery::first(1000));
      for (size_t i = 0; i < ls.size(); ++i)
        EXPECT_EQ(ls[i].to, std::to_string(t) + "-" + std::to_string(i));
      EXPECT_TRUE(tx.find("user", "key-" + std::to_string(t) + "-7"));
    }
  });
}

TEST(StoreFile, ConcurrentMemoryStore) {
  auto store = open_sqlite(":memory:");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        store->write("t", [&](Tx& tx) {
          tx.insert("user", std::to_string(t) + "-" + std::to_string(i), Json::object());
        });
        store->read("t", [&](Tx& tx) { (void)tx.count("user"); });
      }
    });
  }
  for (auto& th : threads) th.join();
  store->read("t", [](Tx& tx) { EXPECT_EQ(tx.count("user"), 400u); });
}

TEST(StoreFile, DataSurvivesCloseAndReopen) {
  TempDir dir;
  const std::string path = dir.file("ks.db");
  int64_t seq_before = 0;
  {
    auto s = open_sqlite(path);
    s->write("acme", [&](Tx& tx) {
      for (int i = 0; i < 50; ++i) tx.insert("user", "u" + std::to_string(i), {{"i", i}});
      tx.link("r", "a", "b", {{"d", 1}});
      seq_before = tx.get("user", "u49")->seq;
    });
    s->write("acme", [](Tx& tx) { tx.remove("user", "u0"); });
  }
  {
    auto s = open_sqlite(path);
    s->read("acme", [](Tx& tx) {
      EXPECT_EQ(tx.count("user"), 49u);
      EXPECT_EQ(tx.get("user", "u7")->data["i"], 7);
      EXPECT_EQ(tx.links_from("r", "a", q_all())[0].data["d"], 1);
    });
    // The sequence continues after a reopen.
    s->write("acme", [&](Tx& tx) { EXPECT_GT(tx.insert("user", "new", 1).seq, seq_before + 1); });
  }
}

// Committed writes survive kill -9 of the writing process (WAL, synchronous=NORMAL).
TEST(StoreFile, CommittedWritesSurviveKill9) {
  TempDir dir;
  const std::string path = dir.file("ks.db");
  open_sqlite(path).reset();  // create and migrate before forking
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    try {
      auto s = open_sqlite(path);
      for (int i = 0;; ++i) {
        s->write("t", [&](Tx& tx) { tx.insert("user", std::to_string(i), {{"i", i}}); });
        // Report only after the commit returned.
        if (write(fds[1], &i, sizeof i) != sizeof i) _exit(2);
      }
    } catch (...) {
      _exit(3);
    }
  }
  close(fds[1]);
  int last = -1;
  int v = 0;
  while (last < 200 && read(fds[0], &v, sizeof v) == sizeof v) last = v;
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  close(fds[0]);
  ASSERT_GE(last, 200);
  auto s = open_sqlite(path);
  s->read("t", [&](Tx& tx) {
    EXPECT_GE(tx.count("user"), static_cast<size_t>(last + 1));
    for (int i = 0; i <= last; ++i) EXPECT_TRUE(tx.get("user", std::to_string(i))) << i;
  });
}

// Not a benchmark gate: prints rough throughput numbers for the record.
TEST(StoreFile, Throughput) {
  TempDir dir;
  auto s = open_sqlite(dir.file("ks.db"));
  constexpr int kN = 10000;
  using Clock = std::chrono::steady_clock;
  auto t0 = Clock::now();
  s->write("acme", [](Tx& tx) {
    for (int i = 0; i < kN; ++i) {
      tx.insert("user", "user_" + std::to_string(i),
                {{"email", "user" + std::to_string(i) + "@example.com"},
                 {"name", "User " + std::to_string(i)},
                 {"app_metadata", {{"plan", "free"}}}},
                "user" + std::to_string(i) + "@example.com");
    }
  });
  auto t1 = Clock::now();
  size_t found = 0;
  s->read("acme", [&](Tx& tx) {
    for (int i = 0; i < kN; ++i) found += tx.get("user", "user_" + std::to_string(i)).has_value();
  });
  auto t2 = Clock::now();
  for (int i = 0; i < 1000; ++i) {
    s->read("acme", [&](Tx& tx) { found += tx.get("user", "user_" + std::to_string(i)) ? 1 : 0; });
  }
  auto t3 = Clock::now();
  for (int i = 0; i < 300; ++i) {
    s->write("acme", [&](Tx& tx) { tx.insert("user", "x" + std::to_string(i), {{"i", i}}); });
  }
  auto t4 = Clock::now();
  EXPECT_EQ(found, size_t{kN} + 1000);
  auto per_sec = [](double n, Clock::duration d) {
    return n / std::chrono::duration<double>(d).count();
  };
  std::printf(
      "[ throughput ] inserts in one tx: %.0f/s; get-by-id in one read tx: %.0f/s; "
      "read tx with one get: %.0f/s; write tx with one insert: %.0f/s\n",
      per_sec(kN, t1 - t0), per_sec(kN, t2 - t1), per_sec(1000, t3 - t2), per_sec(300, t4 - t3));
}

}  // namespace
}  // namespace ks::store

TEST(SqliteStoreOrder, NewestFirstAndBeforeSeq) {
  auto store = ks::store::open_sqlite(":memory:");
  store->write("t", [](ks::store::Tx& tx) {
    for (int i = 0; i < 5; ++i) tx.insert("log", "l" + std::to_string(i), {{"n", i}});
  });
  store->read("t", [](ks::store::Tx& tx) {
    ks::store::ListQuery q;
    q.newest_first = true;
    q.limit = 2;
    auto recs = tx.list("log", q);
    ASSERT_EQ(recs.size(), 2u);
    EXPECT_EQ(recs[0].id, "l4");
    EXPECT_EQ(recs[1].id, "l3");
    q.before_seq = recs[1].seq;
    auto next = tx.list("log", q);
    ASSERT_EQ(next.size(), 2u);
    EXPECT_EQ(next[0].id, "l2");
    EXPECT_EQ(next[1].id, "l1");
    EXPECT_EQ(tx.count("log", q), 3u);
  });
}
