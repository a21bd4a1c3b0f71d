// One SQLite database of the store (core/store/store.h): schema, connections, the Tx.
//
// Every key and every query carries tenant_id, so the shared database holds many tenants and a
// per-tenant database (same schema) holds one. A small pool of connections (one per concurrent
// transaction, created on demand, capped) serves many threads; each connection caches its
// prepared statements. ":memory:" uses a single connection so every transaction sees the same
// database. Which database a tenant lives in is routing_store.cpp's business.
#include <algorithm>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "core/store/sqlite/sqlite_db.h"

namespace ks::store::sqlite {
namespace {

// Numbered schema migrations, applied in order at open inside one transaction. To change the
// schema, append {N + 1, "..."}; never edit an entry that has shipped.
struct Migration {
  int version;
  const char* sql;
};

constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE seq_counter (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  value INTEGER NOT NULL
);
INSERT INTO seq_counter (id, value) VALUES (1, 0);

CREATE TABLE records (
  tenant_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  id TEXT NOT NULL,
  ukey TEXT,
  seq INTEGER NOT NULL,
  data TEXT NOT NULL,
  PRIMARY KEY (tenant_id, kind, id)
);
CREATE UNIQUE INDEX records_ukey ON records (tenant_id, kind, ukey) WHERE ukey IS NOT NULL;
CREATE INDEX records_seq ON records (tenant_id, kind, seq);

CREATE TABLE links (
  tenant_id TEXT NOT NULL,
  rel TEXT NOT NULL,
  from_id TEXT NOT NULL,
  to_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  data TEXT,
  PRIMARY KEY (tenant_id, rel, from_id, to_id)
);
CREATE INDEX links_from_seq ON links (tenant_id, rel, from_id, seq);
CREATE INDEX links_to_seq ON links (tenant_id, rel, to_id, seq);
)sql"},
    // Placement of tenants (routing_store.cpp). In the shared database: one row per tenant
    // registered through Store::create_tenant (tenants from before have none and are shared). In
    // a per-tenant database, store_meta holds 'tenant' (whose it is) and, once its tenant has
    // moved away, 'retired' (so another process still holding it open notices).
    {2, R"sql(
CREATE TABLE tenant_isolation (
  tenant_id TEXT PRIMARY KEY,
  isolation TEXT NOT NULL CHECK (isolation IN ('shared', 'database'))
) WITHOUT ROWID;
CREATE TABLE store_meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
)sql"},
    // Tenant state versions (Tx::state_version): a counter per tenant, raised by every write of a
    // record of a state kind, whoever writes (this process, the CLI, another server on the same
    // files). Caches of tenant state compare it instead of re-reading the state. The kinds are
    // those of store.h kStateKinds; changing them takes a new migration.
    {3, R"sql(
CREATE TABLE state_versions (
  tenant_id TEXT PRIMARY KEY,
  version INTEGER NOT NULL
) WITHOUT ROWID;
-- Its triggers: state_version_triggers(kStateKindsV3) below.
)sql"},
    // Hooks join the state kinds (a tenant's scripts are cached with its state).
    {4, R"sql(
DROP TRIGGER state_version_INSERT;
DROP TRIGGER state_version_UPDATE;
DROP TRIGGER state_version_DELETE;
-- Recreated: state_version_triggers(kStateKindsV4) below.
)sql"},
};

constexpr int kLatestVersion = kMigrations[std::size(kMigrations) - 1].version;

// The state kinds as each migration shipped them (never derived from kStateKinds, which is the
// latest list).
constexpr const char* kStateKindsV3 =
    "('tenant', 'custom_domain', 'client', 'connection', 'resource_server', 'signing_key', "
    "'email_provider', 'branding', 'client_grant')";
constexpr const char* kStateKindsV4 =
    "('tenant', 'custom_domain', 'client', 'connection', 'resource_server', 'signing_key', "
    "'email_provider', 'branding', 'client_grant', 'hook')";

// The triggers of migrations 3 and 4: INSERT, UPDATE and DELETE of a record of one of `kinds`
// raise its tenant's version.
std::string state_version_triggers(const char* kinds) {
  struct Event {
    const char* name;
    const char* row;
  };
  std::string sql;
  for (const Event e : {Event{"INSERT", "NEW"}, Event{"UPDATE", "NEW"}, Event{"DELETE", "OLD"}}) {
    const std::string row = e.row;
    sql += "CREATE TRIGGER state_version_" + std::string(e.name) + " AFTER " + e.name +
           " ON records WHEN " + row + ".kind IN " + kinds +
           " BEGIN INSERT INTO state_versions (tenant_id, version) VALUES (" + row +
           ".tenant_id, 1) ON CONFLICT (tenant_id) DO UPDATE SET version = version + 1; END;\n";
  }
  return sql;
}

std::string dump_json(const Json& j) {
  try {
    return j.dump();
  } catch (const Json::exception& e) {
    throw std::invalid_argument(std::string("store: document cannot be serialized: ") + e.what());
  }
}

Json parse_json(std::string_view text) {
  try {
    return Json::parse(text);
  } catch (const Json::exception& e) {
    throw StoreError(std::string("store: stored document is not valid JSON: ") + e.what());
  }
}

int64_t clamp_i64(size_t v) {
  constexpr auto kMax = static_cast<size_t>(std::numeric_limits<int64_t>::max());
  return v > kMax ? std::numeric_limits<int64_t>::max() : static_cast<int64_t>(v);
}

// "$.\"field\"" for json_extract; the field must be [A-Za-z0-9_]+.
std::string filter_path(const std::string& field) {
  bool ok = !field.empty() && std::all_of(field.begin(), field.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_';
  });
  if (!ok) throw std::invalid_argument("store: invalid filter field name '" + field + "'");
  return "$.\"" + field + "\"";
}

}  // namespace

[[noreturn]] void throw_db(sqlite3* db, std::string_view what) {
  throw StoreError(std::string(what) + ": " + sqlite3_errmsg(db));
}

bool is_memory_path(const std::string& path) { return path.empty() || path == ":memory:"; }

// ---- Conn, Stmt -------------------------------------------------------------------------------

Conn::Conn(const std::string& path, bool memory, bool create, bool tenant_file) {
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw StoreError("store: cannot open '" + path + "': " + msg);
  }
  try {
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, kBusyTimeoutMs);
    exec("PRAGMA foreign_keys = ON");
    if (!memory) {
      // WAL + NORMAL: a commit survives a process crash (kill -9); only an OS crash or power
      // loss can lose the last transactions. Keep the WAL file from staying huge.
      exec("PRAGMA synchronous = NORMAL");
      exec("PRAGMA journal_size_limit = 67108864");
    }
    if (tenant_file) {
      int persist = 1;
      sqlite3_file_control(db_, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
      exec("PRAGMA cache_size = -1024");  // many of them may be open: 1 MiB each at most
    }
  } catch (...) {
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw;
  }
}

Conn::~Conn() {
  for (auto& [sql, stmt] : stmts_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

sqlite3_stmt* Conn::prepare(std::string_view sql) {
  auto it = stmts_.find(sql);
  if (it != stmts_.end()) return it->second;
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                         &stmt, nullptr) != SQLITE_OK) {
    throw_db(db_, "store: prepare failed");
  }
  stmts_.emplace(std::string(sql), stmt);
  return stmt;
}

void Conn::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    throw StoreError(std::string("store: ") + msg);
  }
}

void Conn::rollback() noexcept {
  if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

bool Stmt::step() {
  int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  std::string msg = sqlite3_errmsg(db_);
  if ((rc & 0xff) == SQLITE_CONSTRAINT) throw Conflict("store: " + msg);
  throw StoreError("store: " + msg);
}

// ---- SqliteTx ---------------------------------------------------------------------------------

namespace {

class SqliteTx final : public Tx {
 public:
  SqliteTx(Conn& c, std::string tenant, bool writable, ScopeResolver& scopes)
      : c_(c), tenant_(std::move(tenant)), writable_(writable), scopes_(scopes) {}

  const std::string& tenant() const override { return tenant_; }

  std::optional<Record> get(std::string_view kind, std::string_view id) override {
    Stmt s(c_, "SELECT seq, data FROM records WHERE tenant_id = ?1 AND kind = ?2 AND id = ?3");
    s.bind(1, tenant_).bind(2, kind).bind(3, id);
    if (!s.step()) return std::nullopt;
    return Record{std::string(id), s.col_int(0), parse_json(s.col_text(1))};
  }

  int64_t state_version() override {
    Stmt s(c_, "SELECT version FROM state_versions WHERE tenant_id = ?1");
    s.bind(1, tenant_);
    return s.step() ? s.col_int(0) : 0;
  }

  std::optional<Record> find(std::string_view kind, std::string_view unique_key) override {
    if (unique_key.empty()) return std::nullopt;
    Stmt s(c_,
           "SELECT id, seq, data FROM records WHERE tenant_id = ?1 AND kind = ?2 AND ukey = ?3");
    s.bind(1, tenant_).bind(2, kind).bind(3, unique_key);
    if (!s.step()) return std::nullopt;
    return Record{std::string(s.col_text(0)), s.col_int(1), parse_json(s.col_text(2))};
  }

  Record insert(std::string_view kind, std::string_view id, const Json& data,
                std::string_view unique_key) override {
    check_writable();
    const std::string doc = dump_json(data);
    const int64_t seq = next_seq();
    Stmt s(c_,
           "INSERT INTO records (tenant_id, kind, id, ukey, seq, data) "
           "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    s.bind(1, tenant_).bind(2, kind).bind(3, id).bind_opt(4, unique_key).bind(5, seq).bind(6, doc);
    s.run();
    return Record{std::string(id), seq, data};
  }

  bool update(std::string_view kind, std::string_view id, const Json& data,
              std::string_view unique_key) override {
    check_writable();
    const std::string doc = dump_json(data);
    Stmt s(c_,
           "UPDATE records SET data = ?4, ukey = ?5 "
           "WHERE tenant_id = ?1 AND kind = ?2 AND id = ?3");
    s.bind(1, tenant_).bind(2, kind).bind(3, id).bind(4, doc).bind_opt(5, unique_key);
    s.run();
    return s.changes() > 0;
  }

  bool remove(std::string_view kind, std::string_view id) override {
    check_writable();
    Stmt s(c_, "DELETE FROM records WHERE tenant_id = ?1 AND kind = ?2 AND id = ?3");
    s.bind(1, tenant_).bind(2, kind).bind(3, id);
    s.run();
    return s.changes() > 0;
  }

  std::vector<Record> list(std::string_view kind, const ListQuery& q) override {
    std::vector<Record> out;
    std::string path;
    if (!q.field.empty()) path = filter_path(q.field);
    if (q.limit == 0) return out;
    std::string sql =
        "SELECT id, seq, data FROM records WHERE tenant_id = ?1 AND kind = ?2 AND seq > ?3 ";
    if (!path.empty()) sql += "AND json_extract(data, ?6) = ?7 ";
    if (q.before_seq > 0) sql += "AND seq < ?8 ";
    sql +=
        q.newest_first ? "ORDER BY seq DESC LIMIT ?4 OFFSET ?5" : "ORDER BY seq LIMIT ?4 OFFSET ?5";
    Stmt s(c_, sql);
    s.bind(1, tenant_).bind(2, kind).bind(3, q.after_seq);
    if (q.before_seq > 0) s.bind(8, q.before_seq);
    s.bind(4, clamp_i64(q.limit)).bind(5, clamp_i64(q.offset));
    if (!path.empty()) s.bind(6, path).bind(7, q.value);
    out.reserve(std::min<size_t>(q.limit, 256));
    while (s.step()) {
      out.push_back(Record{std::string(s.col_text(0)), s.col_int(1), parse_json(s.col_text(2))});
    }
    return out;
  }

  size_t count(std::string_view kind, const ListQuery& q) override {
    std::string path;
    if (!q.field.empty()) path = filter_path(q.field);
    std::string sql =
        "SELECT count(*) FROM records WHERE tenant_id = ?1 AND kind = ?2 AND seq > ?3 ";
    if (!path.empty()) sql += "AND json_extract(data, ?4) = ?5 ";
    if (q.before_seq > 0) sql += "AND seq < ?6";
    Stmt s(c_, sql);
    s.bind(1, tenant_).bind(2, kind).bind(3, q.after_seq);
    if (q.before_seq > 0) s.bind(6, q.before_seq);
    if (!path.empty()) s.bind(4, path).bind(5, q.value);
    s.step();
    return static_cast<size_t>(s.col_int(0));
  }

  bool link(std::string_view rel, std::string_view from, std::string_view to,
            const Json& data) override {
    check_writable();
    const std::string doc = data.is_null() ? std::string() : dump_json(data);
    {
      Stmt u(c_,
             "UPDATE links SET data = ?5 "
             "WHERE tenant_id = ?1 AND rel = ?2 AND from_id = ?3 AND to_id = ?4");
      u.bind(1, tenant_).bind(2, rel).bind(3, from).bind(4, to);
      if (data.is_null()) {
        u.bind_null(5);
      } else {
        u.bind(5, doc);
      }
      u.run();
      if (u.changes() > 0) return false;
    }
    const int64_t seq = next_seq();
    Stmt s(c_,
           "INSERT INTO links (tenant_id, rel, from_id, to_id, seq, data) "
           "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    s.bind(1, tenant_).bind(2, rel).bind(3, from).bind(4, to).bind(5, seq);
    if (data.is_null()) {
      s.bind_null(6);
    } else {
      s.bind(6, doc);
    }
    s.run();
    return true;
  }

  bool unlink(std::string_view rel, std::string_view from, std::string_view to) override {
    check_writable();
    Stmt s(c_,
           "DELETE FROM links WHERE tenant_id = ?1 AND rel = ?2 AND from_id = ?3 AND to_id = ?4");
    s.bind(1, tenant_).bind(2, rel).bind(3, from).bind(4, to);
    s.run();
    return s.changes() > 0;
  }

  size_t unlink_from(std::string_view rel, std::string_view from) override {
    check_writable();
    Stmt s(c_, "DELETE FROM links WHERE tenant_id = ?1 AND rel = ?2 AND from_id = ?3");
    s.bind(1, tenant_).bind(2, rel).bind(3, from);
    s.run();
    return static_cast<size_t>(s.changes());
  }

  size_t unlink_to(std::string_view rel, std::string_view to) override {
    check_writable();
    Stmt s(c_, "DELETE FROM links WHERE tenant_id = ?1 AND rel = ?2 AND to_id = ?3");
    s.bind(1, tenant_).bind(2, rel).bind(3, to);
    s.run();
    return static_cast<size_t>(s.changes());
  }

  bool linked(std::string_view rel, std::string_view from, std::string_view to) override {
    Stmt s(c_,
           "SELECT 1 FROM links "
           "WHERE tenant_id = ?1 AND rel = ?2 AND from_id = ?3 AND to_id = ?4");
    s.bind(1, tenant_).bind(2, rel).bind(3, from).bind(4, to);
    return s.step();
  }

  std::vector<Link> links_from(std::string_view rel, std::string_view from,
                               const ListQuery& q) override {
    return links(
        "SELECT from_id, to_id, seq, data FROM links "
        "WHERE tenant_id = ?1 AND rel = ?2 AND from_id = ?3 AND seq > ?4 "
        "ORDER BY seq LIMIT ?5 OFFSET ?6",
        rel, from, q);
  }

  std::vector<Link> links_to(std::string_view rel, std::string_view to,
                             const ListQuery& q) override {
    return links(
        "SELECT from_id, to_id, seq, data FROM links "
        "WHERE tenant_id = ?1 AND rel = ?2 AND to_id = ?3 AND seq > ?4 "
        "ORDER BY seq LIMIT ?5 OFFSET ?6",
        rel, to, q);
  }

  size_t count_links_from(std::string_view rel, std::string_view from) override {
    return count_links(
        "SELECT count(*) FROM links WHERE tenant_id = ?1 AND rel = ?2 AND from_id = ?3", rel, from);
  }

  size_t count_links_to(std::string_view rel, std::string_view to) override {
    return count_links(
        "SELECT count(*) FROM links WHERE tenant_id = ?1 AND rel = ?2 AND to_id = ?3", rel, to);
  }

  // One statement over the tenant's rows (the primary key's tenant_id prefix), sorted once by
  // SQLite: a single pass whatever the tenant's size, where paging by seq across kinds would
  // rescan the tenant for every page (no index leads with (tenant_id, seq)).
  void for_each_record(const std::function<void(const RecordEntry&)>& fn) override {
    Stmt s(c_, "SELECT kind, id, ukey, seq, data FROM records WHERE tenant_id = ?1 ORDER BY seq");
    s.bind(1, tenant_);
    RecordEntry e;
    while (s.step()) {
      e.kind.assign(s.col_text(0));
      e.record.id.assign(s.col_text(1));
      e.unique_key.assign(s.col_text(2));  // NULL reads as empty
      e.record.seq = s.col_int(3);
      e.record.data = parse_json(s.col_text(4));
      fn(e);
    }
  }

  void for_each_link(const std::function<void(const LinkEntry&)>& fn) override {
    Stmt s(c_,
           "SELECT rel, from_id, to_id, seq, data FROM links WHERE tenant_id = ?1 ORDER BY seq");
    s.bind(1, tenant_);
    LinkEntry e;
    while (s.step()) {
      e.rel.assign(s.col_text(0));
      e.link.from.assign(s.col_text(1));
      e.link.to.assign(s.col_text(2));
      e.link.seq = s.col_int(3);
      e.link.data = s.col_null(4) ? Json(nullptr) : parse_json(s.col_text(4));
      fn(e);
    }
  }

  Tx& scope(std::string_view tenant) override {
    if (tenant == tenant_) return *this;
    return scopes_.scope(tenant);
  }

  void purge_tenant() override {
    check_writable();
    {
      Stmt s(c_, "DELETE FROM records WHERE tenant_id = ?1");
      s.bind(1, tenant_).run();
    }
    Stmt s(c_, "DELETE FROM links WHERE tenant_id = ?1");
    s.bind(1, tenant_).run();
  }

 private:
  void check_writable() const {
    if (!writable_) throw StoreError("store: write in a read-only transaction");
  }

  // Writers hold the database write lock (BEGIN IMMEDIATE), so a single counter row gives
  // strictly increasing sequence numbers across processes; gaps after a Conflict are harmless.
  int64_t next_seq() {
    Stmt s(c_, "UPDATE seq_counter SET value = value + 1 WHERE id = 1 RETURNING value");
    if (!s.step()) throw StoreError("store: sequence counter row is missing");
    int64_t v = s.col_int(0);
    s.run();
    return v;
  }

  std::vector<Link> links(std::string_view sql, std::string_view rel, std::string_view id,
                          const ListQuery& q) {
    std::vector<Link> out;
    if (q.limit == 0) return out;
    Stmt s(c_, sql);
    s.bind(1, tenant_).bind(2, rel).bind(3, id).bind(4, q.after_seq);
    s.bind(5, clamp_i64(q.limit)).bind(6, clamp_i64(q.offset));
    while (s.step()) {
      Link l{std::string(s.col_text(0)), std::string(s.col_text(1)), s.col_int(2), nullptr};
      if (!s.col_null(3)) l.data = parse_json(s.col_text(3));
      out.push_back(std::move(l));
    }
    return out;
  }

  size_t count_links(std::string_view sql, std::string_view rel, std::string_view id) {
    Stmt s(c_, sql);
    s.bind(1, tenant_).bind(2, rel).bind(3, id);
    s.step();
    return static_cast<size_t>(s.col_int(0));
  }

  Conn& c_;
  std::string tenant_;
  bool writable_;
  ScopeResolver& scopes_;
};

}  // namespace

std::unique_ptr<Tx> make_tx(Conn& c, std::string tenant, bool writable, ScopeResolver& scopes) {
  return std::make_unique<SqliteTx>(c, std::move(tenant), writable, scopes);
}

// ---- Database ---------------------------------------------------------------------------------

Database::Database(std::string path, const Options& options)
    : path_(std::move(path)), memory_(is_memory_path(path_)), opt_(options) {
  if (memory_) opt_.max_connections = opt_.max_idle = 1;  // one connection is the database
  idle_.reserve(opt_.max_connections);                    // release() never allocates
  auto c = std::make_unique<Conn>(path_, memory_, opt_.create, opt_.tenant_file);
  if (!memory_) {
    Stmt s(*c, "PRAGMA journal_mode = WAL");
    std::string mode = s.step() ? std::string(s.col_text(0)) : std::string();
    if (mode != "wal") throw StoreError("store: cannot enable WAL mode (got '" + mode + "')");
  }
  migrate(*c);
  idle_.push_back(std::move(c));
  open_ = 1;
}

void Database::migrate(Conn& c) {
  auto current_version = [&] {
    Stmt t(
        c,
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'");
    if (!t.step() || t.col_int(0) == 0) return 0;
    Stmt s(c, "SELECT coalesce(max(version), 0) FROM schema_migrations");
    return s.step() ? static_cast<int>(s.col_int(0)) : 0;
  };
  auto check_not_newer = [](int current) {
    if (current > kLatestVersion) {
      throw StoreError("store: database schema version " + std::to_string(current) +
                       " is newer than this build supports (" + std::to_string(kLatestVersion) +
                       ")");
    }
  };
  // Up to date (every open of a per-tenant database): no write lock needed.
  int current = current_version();
  check_not_newer(current);
  if (current == kLatestVersion) {
    version_ = current;
    return;
  }
  c.exec("BEGIN IMMEDIATE");
  try {
    c.exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY,"
        " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))");
    current = current_version();
    check_not_newer(current);
    for (const auto& m : kMigrations) {
      if (m.version <= current) continue;
      c.exec(m.sql);
      if (m.version == 3) c.exec(state_version_triggers(kStateKindsV3).c_str());
      if (m.version == 4) c.exec(state_version_triggers(kStateKindsV4).c_str());
      Stmt s(c, "INSERT INTO schema_migrations (version) VALUES (?1)");
      s.bind(1, int64_t{m.version}).run();
      current = m.version;
    }
    c.exec("COMMIT");
    version_ = current;
  } catch (...) {
    c.rollback();
    throw;
  }
}

std::unique_ptr<Conn> Database::acquire(Deadline deadline) {
  std::unique_lock lk(mu_);
  auto ready = [&] { return !idle_.empty() || open_ < opt_.max_connections; };
  if (deadline == Deadline::max()) {
    cv_.wait(lk, ready);
  } else if (!cv_.wait_until(lk, deadline, ready)) {
    throw StoreError("store: database is busy (no free connection to '" + path_ + "')");
  }
  if (!idle_.empty()) {
    auto c = std::move(idle_.back());
    idle_.pop_back();
    return c;
  }
  ++open_;
  lk.unlock();
  try {
    return std::make_unique<Conn>(path_, memory_, /*create=*/false, opt_.tenant_file);
  } catch (...) {
    lk.lock();
    --open_;
    lk.unlock();
    cv_.notify_one();
    throw;
  }
}

void Database::release(std::unique_ptr<Conn> c) noexcept {
  if (!c) return;
  c->rollback();
  // A connection stuck in a transaction is discarded (never the only in-memory one).
  if (c->in_transaction() && !memory_) c.reset();
  std::unique_ptr<Conn> surplus;
  {
    std::lock_guard lk(mu_);
    if (c && idle_.size() < opt_.max_idle) {
      idle_.push_back(std::move(c));
    } else {
      --open_;
      surplus = std::move(c);
    }
  }
  cv_.notify_one();
}

}  // namespace ks::store::sqlite
