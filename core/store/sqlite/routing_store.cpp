// The SQLite Store: routes every tenant to the shared database or to a database of its own, and
// runs transactions that span several databases (Tx::scope).
//
// Registry. The shared database's table tenant_isolation says where each tenant registered
// through create_tenant lives (no row: shared). It is the one source of truth and is read into
// memory at open; every transaction re-checks it inside its own snapshot (shared tenants: their
// row; isolated tenants: the 'retired' mark in their database), so a move made by another
// process (the CLI next to a running server) is noticed and the transaction re-routed before it
// reads or writes anything.
//
// Per-tenant databases are {tenants_dir}/{tenant}.db, opened on first use and closed least
// recently used first beyond max_open_tenant_databases (a database a transaction is using stays
// open until it ends). In-memory stores give each isolated tenant a private in-memory database.
//
// Atomicity across databases. A transaction begins on its tenant's database; scope(other) joins
// other's database lazily (for writes: its write lock, waiting at most the busy timeout, so two
// transactions that join each other's databases fail instead of deadlocking). When fn returns,
// the databases commit one by one in reverse order of joining, the transaction's own database
// last; if fn throws, all roll back. That is all-or-nothing except for a crash (or a failed
// COMMIT) between two databases' commits: the databases committed before it keep the change,
// the others do not. Committing the own database last means a crash leaves side effects without
// their cause, never the reverse: a tenant created with its data in its own database is either
// fully provisioned or invisible (its control-plane record commits last).
//
// Moving a tenant (move_tenant). New write transactions on the tenant wait at a per-tenant gate;
// reads go on from the old place. The mover takes the shared database's write lock, then the
// tenant database's (always in that order, never waiting for the second while holding the first),
// copies every record and link with its id, unique key, document and seq, and switches the
// registry in the shared database's commit. Moving out of the shared database: the new
// database commits first, then the shared one (copy deleted + registry switched, atomically). A
// crash between the two leaves the tenant shared and complete plus an unreferenced file, which
// the next create or move of that tenant deletes. Moving into the shared database: the shared
// database commits first (rows + registry), then the old database is marked retired and deleted.
// A crash between the two leaves the tenant shared and complete plus an unreferenced file.
//
// Seq values are kept. Every database has its own counter, so a tenant's values may equal other
// tenants' values in the destination: harmless, because seq orders rows within one tenant
// (every query filters by tenant) and is not unique. The destination counter is raised above
// the tenant's largest value, so new rows still sort after old ones and checkpoint tokens
// ("from") handed out before the move stay valid.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/store/sqlite/sqlite_db.h"

namespace ks::store {

std::string_view to_string(Isolation isolation) {
  return isolation == Isolation::Database ? "database" : "shared";
}

std::optional<Isolation> parse_isolation(std::string_view text) {
  if (text == "shared") return Isolation::Shared;
  if (text == "database") return Isolation::Database;
  return std::nullopt;
}

namespace sqlite {
namespace {

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;
using Deadline = Database::Deadline;

constexpr auto kJoinTimeout = std::chrono::milliseconds(kBusyTimeoutMs);
constexpr size_t kTenantConnections = 4;
constexpr size_t kTenantIdleConnections = 1;
// Re-routing a transaction whose tenant another process moved; more means a move in progress.
constexpr int kMaxRoutes = 8;

// Why this thread's last attempt to open a tenant's database failed (for the error when routing
// gives up).
std::string& last_open_error() {
  thread_local std::string error;
  return error;
}

// Stores with a transaction open on the current thread. A nested read/write on the same store
// from inside fn would deadlock (single connection, write lock) or silently miss the outer
// transaction's writes, so it is refused.
thread_local std::vector<const void*> t_active_stores;

struct NestGuard {
  explicit NestGuard(const void* st) : st_(st) {
    if (std::find(t_active_stores.begin(), t_active_stores.end(), st) != t_active_stores.end()) {
      throw StoreError("store: nested transaction on the same thread; use the Tx you have");
    }
    t_active_stores.push_back(st);
  }
  ~NestGuard() {
    auto it = std::find(t_active_stores.begin(), t_active_stores.end(), st_);
    if (it != t_active_stores.end()) t_active_stores.erase(it);
  }
  NestGuard(const NestGuard&) = delete;
  NestGuard& operator=(const NestGuard&) = delete;
  const void* st_;
};

// ---- SQL on a connection with a transaction open ----------------------------------------------

std::optional<Isolation> registered(Conn& c, std::string_view tenant) {
  Stmt s(c, "SELECT isolation FROM tenant_isolation WHERE tenant_id = ?1");
  s.bind(1, tenant);
  if (!s.step()) return std::nullopt;
  return parse_isolation(s.col_text(0)).value_or(Isolation::Shared);
}

void set_registered(Conn& c, std::string_view tenant, Isolation isolation) {
  Stmt s(c,
         "INSERT INTO tenant_isolation (tenant_id, isolation) VALUES (?1, ?2) "
         "ON CONFLICT (tenant_id) DO UPDATE SET isolation = excluded.isolation");
  s.bind(1, tenant).bind(2, to_string(isolation)).run();
}

bool has_data(Conn& c, std::string_view tenant) {
  for (const char* sql : {"SELECT 1 FROM records WHERE tenant_id = ?1 LIMIT 1",
                          "SELECT 1 FROM links WHERE tenant_id = ?1 LIMIT 1"}) {
    Stmt s(c, sql);
    s.bind(1, tenant);
    if (s.step()) return true;
  }
  return false;
}

void purge(Conn& c, std::string_view tenant) {
  for (const char* sql :
       {"DELETE FROM records WHERE tenant_id = ?1", "DELETE FROM links WHERE tenant_id = ?1"}) {
    Stmt s(c, sql);
    s.bind(1, tenant).run();
  }
}

bool retired(Conn& c) {
  Stmt s(c, "SELECT 1 FROM store_meta WHERE key = 'retired'");
  return s.step();
}

void set_meta(Conn& c, std::string_view key, std::string_view value) {
  Stmt s(c, "INSERT OR REPLACE INTO store_meta (key, value) VALUES (?1, ?2)");
  s.bind(1, key).bind(2, value).run();
}

// Copies every record and link of `tenant` verbatim (ids, unique keys, seq, documents) and
// raises the destination's seq counter above the largest value copied.
void copy_tenant(Conn& from, Conn& to, std::string_view tenant) {
  int64_t max_seq = 0;
  // Both tables have the tenant id, three key columns, seq and data.
  struct Table {
    const char* name;
    const char* columns;
  };
  for (const Table& t : {Table{"records", "kind, id, ukey, seq, data"},
                         Table{"links", "rel, from_id, to_id, seq, data"}}) {
    const std::string name = t.name, cols = t.columns;
    const std::string insert =
        "INSERT INTO " + name + " (tenant_id, " + cols + ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
    Stmt sel(from, "SELECT " + cols + " FROM " + name + " WHERE tenant_id = ?1 ORDER BY seq");
    sel.bind(1, tenant);
    while (sel.step()) {
      max_seq = std::max(max_seq, sel.col_int(3));
      Stmt ins(to, insert);
      ins.bind(1, tenant);
      for (int i = 0; i < 5; ++i) ins.bind_column(i + 2, sel, i);
      ins.run();
    }
  }
  Stmt s(to, "UPDATE seq_counter SET value = max(value, ?1) WHERE id = 1");
  s.bind(1, max_seq).run();
  // The state version goes on rising: above both the source's and what copying raised it to, so
  // no version a cache saw before the move names a different state after it.
  int64_t version = 0;
  Stmt v(from, "SELECT version FROM state_versions WHERE tenant_id = ?1");
  v.bind(1, tenant);
  if (v.step()) version = v.col_int(0);
  Stmt up(to,
          "INSERT INTO state_versions (tenant_id, version) VALUES (?1, ?2 + 1) "
          "ON CONFLICT (tenant_id) DO UPDATE SET version = max(version, ?2) + 1");
  up.bind(1, tenant).bind(2, version).run();
}

// Marks a per-tenant database file retired (so a process still holding it open re-routes
// instead of writing into a deleted file), then deletes it with its -wal and -shm. Best effort
// on files that are not databases (an interrupted create).
void retire_and_remove(const std::string& path) {
  std::error_code ec;
  if (fs::exists(path, ec)) {
    try {
      Conn c(path, false, /*create=*/false, /*tenant_file=*/true);
      c.exec("BEGIN IMMEDIATE");
      set_meta(c, "retired", "1");
      c.exec("COMMIT");
    } catch (const StoreError&) {
    }
  }
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path + suffix, ec);
}

// ---- Transactions -----------------------------------------------------------------------------

// One database taking part in a transaction: its write lock (writers), a connection with a
// transaction open.
struct Part {
  std::shared_ptr<Database> db;
  std::unique_lock<std::timed_mutex> write_lock;
  std::unique_ptr<Conn> conn;

  Part(std::shared_ptr<Database> d, bool write, Deadline deadline) : db(std::move(d)) {
    if (write) {
      write_lock = std::unique_lock(db->write_mutex(), std::defer_lock);
      if (deadline == Deadline::max()) {
        write_lock.lock();
      } else if (!write_lock.try_lock_until(deadline)) {
        throw StoreError("store: database is busy (a writer holds '" + db->path() + "')");
      }
    }
    conn = db->acquire(deadline);
    try {
      Stmt(*conn, write ? "BEGIN IMMEDIATE" : "BEGIN").run();
    } catch (...) {
      db->release(std::move(conn));
      throw;
    }
  }
  void commit() { Stmt(*conn, "COMMIT").run(); }
  // Rolls back whatever was not committed, then unlocks.
  ~Part() { db->release(std::move(conn)); }
  Part(const Part&) = delete;
  Part& operator=(const Part&) = delete;
};

class RoutingStore;

// One logical transaction over the databases its tenants live in.
class Txn final : public ScopeResolver {
 public:
  Txn(RoutingStore& st, bool write) : st_(st), write_(write) {}
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;

  Tx& begin(std::string_view tenant) { return route(tenant, Deadline::max()); }

  Tx& scope(std::string_view tenant) override {
    if (auto it = txs_.find(tenant); it != txs_.end()) return *it->second;
    return route(tenant, SteadyClock::now() + kJoinTimeout);
  }

  // Reverse order of joining: the transaction's own database last. Throws on the first failed
  // COMMIT; the databases not yet committed then roll back.
  void commit() {
    txs_.clear();
    for (auto it = parts_.rbegin(); it != parts_.rend(); ++it) {
      (*it)->commit();
      it->reset();  // unlock as soon as possible
    }
  }

  // The shared database's connection if it already takes part.
  Conn* shared_conn();
  bool writes() const { return write_; }

 private:
  Tx& route(std::string_view tenant, Deadline deadline);

  RoutingStore& st_;
  bool write_;
  std::vector<std::unique_ptr<Part>> parts_;
  std::map<std::string, std::unique_ptr<Tx>, std::less<>> txs_;  // ends before parts_
};

class RoutingStore final : public Store {
 public:
  RoutingStore(const std::string& path, const SqliteOptions& options)
      : memory_(is_memory_path(path)),
        tenants_dir_(options.tenants_dir),
        max_open_(memory_ ? SIZE_MAX : std::max<size_t>(1, options.max_open_tenant_databases)) {
    if (tenants_dir_.empty() && !memory_) {
      fs::path parent = fs::path(path).parent_path();
      tenants_dir_ = ((parent.empty() ? fs::path(".") : parent) / "tenants").string();
    }
    shared_ = std::make_shared<Database>(path, Database::Options{});
    Part p(shared_, false, Deadline::max());
    Stmt s(*p.conn, "SELECT tenant_id FROM tenant_isolation WHERE isolation = 'database'");
    while (s.step()) isolated_.emplace(std::string(s.col_text(0)), Placement{});
  }

  void read(std::string_view tenant, const std::function<void(Tx&)>& fn) override {
    run(tenant, fn, false);
  }
  void write(std::string_view tenant, const std::function<void(Tx&)>& fn) override {
    run(tenant, fn, true);
  }
  int schema_version() override { return shared_->version(); }

  Isolation isolation(std::string_view tenant) override {
    std::lock_guard lk(mu_);
    return isolated_.count(tenant) ? Isolation::Database : Isolation::Shared;
  }

  void create_tenant(std::string_view tenant, Isolation isolation) override {
    if (isolation == Isolation::Database) check_file_name(tenant);
    NestGuard nest(this);
    Gate gate(*this, tenant);
    Part sp(shared_, true, Deadline::max());
    if (registered(*sp.conn, tenant) || has_data(*sp.conn, tenant))
      throw Conflict("store: tenant '" + std::string(tenant) + "' exists already");
    std::shared_ptr<Database> db;
    if (isolation == Isolation::Database) db = create_database(tenant);
    set_registered(*sp.conn, tenant, isolation);
    switch_to(sp, tenant, isolation, std::move(db));
  }

  void drop_tenant(std::string_view tenant) override {
    NestGuard nest(this);
    Gate gate(*this, tenant);
    std::shared_ptr<Database> held = open_handle(tenant);
    {
      Part sp(shared_, true, Deadline::max());
      purge(*sp.conn, tenant);
      Stmt(*sp.conn, "DELETE FROM tenant_isolation WHERE tenant_id = ?1").bind(1, tenant).run();
      switch_to(sp, tenant, Isolation::Shared, nullptr);
    }
    if (!wait_unused(held)) return;  // still in use: retired, removed by the next create/move
    if (!memory_) retire_and_remove(database_path(tenant));
  }

  void move_tenant(std::string_view tenant, Isolation to) override {
    if (to == Isolation::Database) check_file_name(tenant);
    NestGuard nest(this);
    Gate gate(*this, tenant);
    for (;;) {
      auto sp = std::make_unique<Part>(shared_, true, Deadline::max());
      auto reg = registered(*sp->conn, tenant);
      if (!reg && !has_data(*sp->conn, tenant))
        throw UnknownTenant("store: unknown tenant '" + std::string(tenant) + "'");
      const Isolation from = reg.value_or(Isolation::Shared);
      if (from == to) {
        learn(tenant, from, nullptr);
        return;
      }
      if (to == Isolation::Database) {
        auto db = create_database(tenant);
        {
          Part dp(db, true, Deadline::max());
          copy_tenant(*sp->conn, *dp.conn, tenant);
          dp.commit();
        }
        purge(*sp->conn, tenant);
        set_registered(*sp->conn, tenant, Isolation::Database);
        switch_to(*sp, tenant, Isolation::Database, std::move(db));
        return;
      }
      learn(tenant, Isolation::Database, nullptr);  // in case another process put it there
      auto db = locate(tenant);
      if (!db || db == shared_)
        throw StoreError("store: the database of tenant '" + std::string(tenant) +
                         "' is missing: " + database_path(tenant));
      // Lock order: shared, then the tenant's. Never wait for the second holding the first (a
      // transaction on the tenant may be waiting to join the shared database): back off.
      std::unique_lock wl(db->write_mutex(), std::try_to_lock);
      if (!wl.owns_lock()) {
        sp.reset();
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      auto dconn = db->acquire();
      struct Release {
        Database& db;
        std::unique_ptr<Conn>& c;
        void now() {
          if (c) db.release(std::move(c));
        }
        ~Release() { now(); }
      } release{*db, dconn};
      Stmt(*dconn, "BEGIN IMMEDIATE").run();
      if (retired(*dconn))
        throw StoreError("store: the database of tenant '" + std::string(tenant) +
                         "' was retired but is still registered");
      purge(*sp->conn, tenant);  // leftovers of an interrupted drop, if any
      copy_tenant(*dconn, *sp->conn, tenant);
      set_registered(*sp->conn, tenant, Isolation::Shared);
      switch_to(*sp, tenant, Isolation::Shared, nullptr);
      set_meta(*dconn, "retired", "1");
      Stmt(*dconn, "COMMIT").run();
      release.now();
      wl.unlock();
      // Transactions of this process that located the database before the switch find it
      // retired and re-route; its files go once none of them holds it any more.
      if (!wait_unused(db)) return;
      if (!memory_) {
        std::error_code ec;
        for (const char* suffix : {"", "-wal", "-shm"})
          fs::remove(database_path(tenant) + suffix, ec);
      }
      return;
    }
  }

  // The tenant's database if this process has it open (never opens it).
  std::shared_ptr<Database> open_handle(std::string_view tenant) {
    std::lock_guard lk(mu_);
    auto it = isolated_.find(tenant);
    return it == isolated_.end() ? nullptr : it->second.db;
  }

  // `db` is no longer routed to (the registry switched away from it). Waits until no transaction
  // of this process holds it, then closes it (db becomes null). False if it was still in use
  // after a few seconds: its files must then stay (retired) for a later create or move to remove.
  static bool wait_unused(std::shared_ptr<Database>& db) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (db && db.use_count() > 1) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    db.reset();
    return true;
  }

  // ---- used by Txn ----

  const std::shared_ptr<Database>& shared() const { return shared_; }

  // The database `tenant` lives in as far as this process knows; null if its file is missing.
  std::shared_ptr<Database> locate(std::string_view tenant) {
    {
      std::lock_guard lk(mu_);
      auto it = isolated_.find(tenant);
      if (it == isolated_.end()) return shared_;
      if (it->second.db) {
        lru_.splice(lru_.begin(), lru_, it->second.lru);
        return it->second.db;
      }
    }
    // Opened outside the lock; another thread may open it too, then one copy wins.
    const std::string path = database_path(tenant);
    std::error_code ec;
    if (memory_ || !fs::exists(path, ec)) return nullptr;
    std::shared_ptr<Database> db;
    try {
      db = std::make_shared<Database>(path, tenant_options(false));
    } catch (const StoreError& e) {
      // Removed meanwhile — and perhaps created again by the next move before we looked: the
      // caller asks the registry and tries again; the error is kept for when it gives up.
      last_open_error() = e.what();
      return nullptr;
    }
    std::vector<std::shared_ptr<Database>> closed;  // closed after unlocking
    std::lock_guard lk(mu_);
    auto it = isolated_.find(tenant);
    if (it == isolated_.end()) return shared_;
    if (it->second.db) {
      closed.push_back(std::move(db));
      lru_.splice(lru_.begin(), lru_, it->second.lru);
      return it->second.db;
    }
    install(it->second, tenant, db, closed);
    return db;
  }

  // Records where `tenant` lives (db: its open database, if at hand).
  void learn(std::string_view tenant, Isolation isolation, std::shared_ptr<Database> db) {
    std::vector<std::shared_ptr<Database>> closed;
    std::lock_guard lk(mu_);
    learn_locked(tenant, isolation, std::move(db), closed);
  }

  // Commits the shared database's transaction `sp` (which switched `tenant` in the registry) and
  // updates this process's view in the same step: no transaction here routes by the old view
  // once the new one is committed.
  void switch_to(Part& sp, std::string_view tenant, Isolation isolation,
                 std::shared_ptr<Database> db) {
    std::vector<std::shared_ptr<Database>> closed;
    std::lock_guard lk(mu_);
    sp.commit();
    learn_locked(tenant, isolation, std::move(db), closed);
  }

  void learn_locked(std::string_view tenant, Isolation isolation, std::shared_ptr<Database> db,
                    std::vector<std::shared_ptr<Database>>& closed) {
    auto it = isolated_.find(tenant);
    if (isolation == Isolation::Shared) {
      if (it == isolated_.end()) return;
      if (it->second.db) {
        lru_.erase(it->second.lru);
        closed.push_back(std::move(it->second.db));
      }
      isolated_.erase(it);
      return;
    }
    if (it == isolated_.end()) it = isolated_.emplace(std::string(tenant), Placement{}).first;
    if (db && it->second.db != db) {
      if (it->second.db) {
        lru_.erase(it->second.lru);
        closed.push_back(std::move(it->second.db));
      }
      install(it->second, tenant, std::move(db), closed);
    }
  }

  // `db` (tenant's database) turned out retired or missing: forget it and ask the registry.
  void relearn(std::string_view tenant, const std::shared_ptr<Database>& db, Txn& txn,
               Deadline deadline) {
    {
      std::vector<std::shared_ptr<Database>> closed;
      std::lock_guard lk(mu_);
      auto it = isolated_.find(tenant);
      if (it != isolated_.end() && db && it->second.db == db) {
        lru_.erase(it->second.lru);
        closed.push_back(std::move(it->second.db));
      }
    }
    std::optional<Isolation> reg;
    if (Conn* c = txn.shared_conn()) {
      // A read transaction's snapshot may predate the move: it cannot teach the process.
      if (!txn.writes()) return;
      reg = registered(*c, tenant);
    } else {
      Part p(shared_, false, deadline);
      reg = registered(*p.conn, tenant);
    }
    learn(tenant, reg.value_or(Isolation::Shared), nullptr);
  }

  size_t open_databases() {
    std::lock_guard lk(mu_);
    return lru_.size();
  }

 private:
  struct Placement {
    std::shared_ptr<Database> db;          // null until opened (and after being closed)
    std::list<std::string>::iterator lru;  // valid while db is set
  };

  // A new transaction writing to a tenant being moved waits here until the move is done.
  class Gate {
   public:
    Gate(RoutingStore& st, std::string_view tenant) : st_(st), tenant_(tenant) {
      std::unique_lock lk(st_.mu_);
      st_.gate_cv_.wait(lk, [&] { return !st_.moving_.count(tenant_); });
      st_.moving_.insert(tenant_);
      st_.moving_count_.fetch_add(1);
    }
    ~Gate() {
      {
        std::lock_guard lk(st_.mu_);
        st_.moving_.erase(tenant_);
        st_.moving_count_.fetch_sub(1);
      }
      st_.gate_cv_.notify_all();
    }
    Gate(const Gate&) = delete;
    Gate& operator=(const Gate&) = delete;

   private:
    RoutingStore& st_;
    std::string tenant_;
  };

  void wait_gate(std::string_view tenant) {
    if (moving_count_.load() == 0) return;
    std::unique_lock lk(mu_);
    gate_cv_.wait(lk, [&] { return moving_.find(tenant) == moving_.end(); });
  }

  void run(std::string_view tenant, const std::function<void(Tx&)>& fn, bool write) {
    NestGuard nest(this);
    if (write) wait_gate(tenant);
    struct Trim {
      RoutingStore& st;
      ~Trim() { st.trim(); }
    } trim{*this};
    Txn txn(*this, write);
    fn(txn.begin(tenant));
    txn.commit();
  }

  Database::Options tenant_options(bool create) const {
    Database::Options o;
    o.create = create;
    o.tenant_file = true;
    o.max_connections = kTenantConnections;
    o.max_idle = kTenantIdleConnections;
    return o;
  }

  // Tenant ids are validated long before (DESIGN.md); still, a file name never leaves the dir.
  static void check_file_name(std::string_view tenant) {
    bool ok =
        !tenant.empty() && tenant.size() <= 63 && tenant[0] != '.' &&
        std::all_of(tenant.begin(), tenant.end(), [](char ch) {
          return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
        });
    if (!ok) throw std::invalid_argument("store: invalid tenant id for a database file");
  }

  std::string database_path(std::string_view tenant) const {
    check_file_name(tenant);
    return tenants_dir_ + "/" + std::string(tenant) + ".db";
  }

  // A fresh, empty database for `tenant` (deleting what an interrupted create or move left).
  std::shared_ptr<Database> create_database(std::string_view tenant) {
    std::string path = ":memory:";
    if (!memory_) {
      path = database_path(tenant);
      retire_and_remove(path);
      std::error_code ec;
      fs::create_directories(tenants_dir_, ec);
      if (ec) throw StoreError("store: cannot create " + tenants_dir_ + ": " + ec.message());
    }
    auto db = std::make_shared<Database>(path, tenant_options(true));
    Part p(db, true, Deadline::max());
    set_meta(*p.conn, "tenant", tenant);
    p.commit();
    return db;
  }

  // Caller holds mu_. Closes least recently used databases nobody uses beyond the bound.
  void install(Placement& pl, std::string_view tenant, std::shared_ptr<Database> db,
               std::vector<std::shared_ptr<Database>>& closed) {
    pl.db = std::move(db);
    lru_.push_front(std::string(tenant));
    pl.lru = lru_.begin();
    trim_locked(closed);
  }

  // After a transaction: the databases it kept open beyond the bound can close now.
  void trim() noexcept {
    if (!over_bound_.load()) return;
    std::vector<std::shared_ptr<Database>> closed;
    std::lock_guard lk(mu_);
    trim_locked(closed);
  }

  // Caller holds mu_. Never closes the most recently used one.
  void trim_locked(std::vector<std::shared_ptr<Database>>& closed) {
    for (auto it = lru_.end(); lru_.size() > max_open_ && it != lru_.begin();) {
      auto prev = std::prev(it);
      if (prev == lru_.begin()) break;
      it = prev;
      auto victim = isolated_.find(*it);
      // Only this map holds it (new references are taken under mu_): not in use.
      if (victim != isolated_.end() && victim->second.db.use_count() == 1) {
        closed.push_back(std::move(victim->second.db));
        it = lru_.erase(it);
      }
    }
    over_bound_.store(lru_.size() > max_open_);
  }

  const bool memory_;
  std::string tenants_dir_;
  const size_t max_open_;
  std::shared_ptr<Database> shared_;

  std::mutex mu_;
  std::unordered_map<std::string, Placement, StringHash, std::equal_to<>> isolated_;
  std::list<std::string> lru_;  // open per-tenant databases, most recently used first
  std::set<std::string, std::less<>> moving_;
  std::atomic<size_t> moving_count_{0};
  std::atomic<bool> over_bound_{false};  // databases in use kept lru_ above the bound
  std::condition_variable gate_cv_;
};

Conn* Txn::shared_conn() {
  for (auto& p : parts_)
    if (p && p->db == st_.shared()) return p->conn.get();
  return nullptr;
}

Tx& Txn::route(std::string_view tenant, Deadline deadline) {
  last_open_error().clear();
  for (int attempt = 0; attempt < kMaxRoutes; ++attempt) {
    std::shared_ptr<Database> db = st_.locate(tenant);
    if (!db) {  // its file is gone: another process moved or dropped it
      st_.relearn(tenant, nullptr, *this, deadline);
      continue;
    }
    Part* part = nullptr;
    bool joined = false;
    for (auto& p : parts_)
      if (p->db == db) part = p.get();
    if (!part) {
      parts_.push_back(std::make_unique<Part>(db, write_, deadline));
      part = parts_.back().get();
      joined = true;
    }
    // Is it still there? (Only another process can have moved it without this one knowing.)
    bool here = true;
    if (db == st_.shared()) {
      if (registered(*part->conn, tenant) == Isolation::Database) {
        here = false;
        // Only a fresh view (a write, or a snapshot taken just now) may teach the process.
        if (joined || write_) st_.learn(tenant, Isolation::Database, nullptr);
      }
    } else if (retired(*part->conn)) {
      here = false;
    }
    if (here) {
      auto tx = make_tx(*part->conn, std::string(tenant), write_, *this);
      Tx& ref = *tx;
      txs_.emplace(std::string(tenant), std::move(tx));
      return ref;
    }
    if (joined) parts_.pop_back();
    if (db != st_.shared()) st_.relearn(tenant, db, *this, deadline);
  }
  const std::string why = last_open_error();
  throw StoreError("store: tenant '" + std::string(tenant) + "' could not be reached" +
                   (why.empty() ? " (it is being moved by another process); retry" : ": " + why));
}

}  // namespace

size_t open_tenant_databases(Store& store) {
  auto* rs = dynamic_cast<RoutingStore*>(&store);
  return rs ? rs->open_databases() : 0;
}

}  // namespace sqlite

std::unique_ptr<Store> open_sqlite(const std::string& path, const SqliteOptions& options) {
  if (!sqlite3_threadsafe()) throw StoreError("store: SQLite was built without thread support");
  return std::make_unique<sqlite::RoutingStore>(path, options);
}

}  // namespace ks::store
