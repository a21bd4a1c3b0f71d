#pragma once
// Internals of the SQLite store, shared by sqlite_store.cpp (one database: connections, schema,
// the tenant-bound Tx) and routing_store.cpp (the Store: which database a tenant lives in, and
// transactions that span several databases). Not part of the core/ interface.
#include <sqlite3.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/store/store.h"

namespace ks::store::sqlite {

inline constexpr int kBusyTimeoutMs = 5000;

[[noreturn]] void throw_db(sqlite3* db, std::string_view what);

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

// One SQLite connection and its prepared-statement cache. Used by one thread at a time.
class Conn {
 public:
  // `create`: create the file if missing (otherwise a missing file is a StoreError).
  // `tenant_file`: a per-tenant database, which is removed by path while other processes may
  // still hold it open; its WAL is made persistent so that closing a stale handle never
  // deletes, by name, the WAL of a newer file at the same path.
  Conn(const std::string& path, bool memory, bool create, bool tenant_file);
  ~Conn();
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  sqlite3* db() const { return db_; }
  // Prepared once per connection, then reused.
  sqlite3_stmt* prepare(std::string_view sql);
  // Runs one or more statements with no parameters and no cached plan.
  void exec(const char* sql);
  // Best effort, never throws: leaves the connection outside any transaction if it can.
  void rollback() noexcept;
  bool in_transaction() const noexcept { return !sqlite3_get_autocommit(db_); }

 private:
  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, sqlite3_stmt*, StringHash, std::equal_to<>> stmts_;
};

// A cached statement in use: bind, step, read columns; reset on scope exit.
class Stmt {
 public:
  Stmt(Conn& c, std::string_view sql) : db_(c.db()), s_(c.prepare(sql)) {}
  ~Stmt() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  // Text is bound without copying: it must outlive the last step().
  Stmt& bind(int i, std::string_view v) {
    // A null data() would bind SQL NULL; an empty string_view must bind ''.
    const char* p = v.data() ? v.data() : "";
    check(sqlite3_bind_text(s_, i, p, static_cast<int>(v.size()), SQLITE_STATIC));
    return *this;
  }
  Stmt& bind(int i, int64_t v) {
    check(sqlite3_bind_int64(s_, i, v));
    return *this;
  }
  Stmt& bind_null(int i) {
    check(sqlite3_bind_null(s_, i));
    return *this;
  }
  // NULL for an empty string_view.
  Stmt& bind_opt(int i, std::string_view v) { return v.empty() ? bind_null(i) : bind(i, v); }
  // Binds column `col` of the current row of `from` (any type, copied).
  Stmt& bind_column(int i, const Stmt& from, int col) {
    check(sqlite3_bind_value(s_, i, sqlite3_column_value(from.s_, col)));
    return *this;
  }

  // True while there is a row.
  bool step();
  void run() {
    while (step()) {
    }
  }
  int64_t changes() const { return sqlite3_changes64(db_); }

  int64_t col_int(int i) const { return sqlite3_column_int64(s_, i); }
  bool col_null(int i) const { return sqlite3_column_type(s_, i) == SQLITE_NULL; }
  std::string_view col_text(int i) const {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, i));
    int n = sqlite3_column_bytes(s_, i);
    return p ? std::string_view(p, static_cast<size_t>(n)) : std::string_view();
  }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) throw_db(db_, "store: bind failed");
  }
  sqlite3* db_;
  sqlite3_stmt* s_;
};

// Resolves Tx::scope(other tenant) for the transaction a SqliteTx belongs to.
class ScopeResolver {
 public:
  virtual Tx& scope(std::string_view tenant) = 0;

 protected:
  ~ScopeResolver() = default;
};

// A Tx bound to one tenant on one connection with a transaction open.
std::unique_ptr<Tx> make_tx(Conn& c, std::string tenant, bool writable, ScopeResolver& scopes);

// One SQLite database file (or one private in-memory database): a capped pool of connections
// and the lock that queues this process's writers.
class Database {
 public:
  struct Options {
    bool create = true;        // create the file if missing
    bool tenant_file = false;  // a per-tenant database (see Conn)
    size_t max_connections = 16;
    size_t max_idle = 16;  // connections kept open while unused
  };
  // Opens and migrates. Throws StoreError.
  Database(std::string path, const Options& options);
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  const std::string& path() const { return path_; }
  bool memory() const { return memory_; }
  int version() const { return version_; }

  // A connection from the pool; waits until `deadline` at most (then StoreError "busy").
  using Deadline = std::chrono::steady_clock::time_point;
  std::unique_ptr<Conn> acquire(Deadline deadline = Deadline::max());
  // Takes back a connection (rolling back anything left open).
  void release(std::unique_ptr<Conn> c) noexcept;

  // Held for the whole of a write transaction by this process's writers, so they queue here
  // rather than in SQLite's sleeping busy handler (other processes: busy_timeout).
  std::timed_mutex& write_mutex() { return write_mu_; }

 private:
  void migrate(Conn& c);

  std::string path_;
  bool memory_;
  Options opt_;
  int version_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Conn>> idle_;
  size_t open_ = 0;
  std::timed_mutex write_mu_;
};

bool is_memory_path(const std::string& path);

// For tests: how many per-tenant databases `store` (from open_sqlite) keeps open.
size_t open_tenant_databases(Store& store);

}  // namespace ks::store::sqlite
