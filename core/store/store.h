#pragma once
// The storage interface. core/ defines it; core/store/sqlite (and later postgres) implement it.
//
// Data model: every record belongs to exactly one tenant and is reached only through a Tx,
// which is bound to one tenant. Records are JSON documents grouped by `kind` ("user",
// "client", ...) with a string id, an optional unique key within (tenant, kind) (e.g. a
// lower-cased email, a resource-server identifier) and an insertion sequence used for stable
// ordering and checkpoint pagination. Relations ("role_permission", "org_member", ...) are
// (from, to) pairs with an optional JSON payload, also per tenant.
//
// Placement (DESIGN.md "Storage and scale"): a tenant is `shared` (its rows sit in the one
// shared database, keyed by tenant) or `database` (its own database). Only the lifecycle and the
// operators' move command deal with placement; the rest of core/ calls read/write/scope the same
// way for both, and sees the same behaviour.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"

namespace ks::store {

// A unique id or unique key already exists.
struct Conflict : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// The database failed (I/O, corruption, busy beyond the timeout).
struct StoreError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Record {
  std::string id;
  // Strictly increasing per tenant, in insertion order (moving a tenant between databases keeps
  // its values, so two tenants may share a value; compare seqs within one tenant only).
  int64_t seq = 0;
  Json data;
};

struct ListQuery {
  size_t offset = 0;
  size_t limit = 50;
  int64_t after_seq = 0;      // checkpoint pagination: only records with seq > after_seq
  int64_t before_seq = 0;     // when > 0: only records with seq < before_seq
  bool newest_first = false;  // records: order by seq descending
  // Optional exact-match filter on one top-level string member of the document.
  std::string field;
  std::string value;

  // The first n items, no filter.
  static ListQuery first(size_t n) {
    ListQuery q;
    q.limit = n;
    return q;
  }
};

struct Link {
  std::string from;
  std::string to;
  int64_t seq = 0;
  Json data;  // null when none was stored
};

// Everything a Tx holds for its tenant, as walked by Tx::for_each_record / for_each_link
// (tenant export). Restoring one takes Tx::insert (which takes the unique key) and Tx::link.
struct RecordEntry {
  std::string kind;
  std::string unique_key;  // empty when none
  Record record;
};
struct LinkEntry {
  std::string rel;
  Link link;
};

// Kinds whose records make up a tenant's state (configuration the flows read on every
// request): any write of one raises the tenant's state version.
inline constexpr std::string_view kStateKinds[] = {
    "tenant",      "custom_domain",  "client",   "connection",   "resource_server",
    "signing_key", "email_provider", "branding", "client_grant", "hook"};

// A transaction bound to one tenant. Read-only Txs throw StoreError on writes.
class Tx {
 public:
  virtual ~Tx() = default;
  virtual const std::string& tenant() const = 0;

  // The tenant's state version: raised by every committed write of a record of a kStateKinds
  // kind, by any process using the same database; never lowered (moving a tenant keeps it
  // rising). Equal versions mean equal state, so a cache keyed by it needs no other invalidation.
  virtual int64_t state_version() = 0;

  virtual std::optional<Record> get(std::string_view kind, std::string_view id) = 0;
  virtual std::optional<Record> find(std::string_view kind, std::string_view unique_key) = 0;
  // Throws Conflict if the id or the (non-empty) unique key already exists.
  virtual Record insert(std::string_view kind, std::string_view id, const Json& data,
                        std::string_view unique_key = {}) = 0;
  // Replaces the document (and unique key). Returns false if there is no such record.
  // Throws Conflict on a unique-key clash.
  virtual bool update(std::string_view kind, std::string_view id, const Json& data,
                      std::string_view unique_key = {}) = 0;
  virtual bool remove(std::string_view kind, std::string_view id) = 0;
  virtual std::vector<Record> list(std::string_view kind, const ListQuery& q) = 0;
  virtual size_t count(std::string_view kind, const ListQuery& q = {}) = 0;

  // Returns false if the link existed already (its data is then replaced).
  virtual bool link(std::string_view rel, std::string_view from, std::string_view to,
                    const Json& data = nullptr) = 0;
  virtual bool unlink(std::string_view rel, std::string_view from, std::string_view to) = 0;
  // Removes every link of `rel` whose from (or to) is `id`. Returns how many.
  virtual size_t unlink_from(std::string_view rel, std::string_view from) = 0;
  virtual size_t unlink_to(std::string_view rel, std::string_view to) = 0;
  virtual bool linked(std::string_view rel, std::string_view from, std::string_view to) = 0;
  // Links of `rel` from `from`, in insertion order (offset/limit/after_seq apply).
  virtual std::vector<Link> links_from(std::string_view rel, std::string_view from,
                                       const ListQuery& q) = 0;
  virtual std::vector<Link> links_to(std::string_view rel, std::string_view to,
                                     const ListQuery& q) = 0;
  virtual size_t count_links_from(std::string_view rel, std::string_view from) = 0;
  virtual size_t count_links_to(std::string_view rel, std::string_view to) = 0;

  // Every record (of every kind), or every link (of every rel), of this Tx's tenant in seq order,
  // read in one pass: a consistent view within this transaction, for any size of tenant. fn must
  // not write through this Tx nor start another walk while one runs; an exception from fn ends
  // the walk and propagates.
  virtual void for_each_record(const std::function<void(const RecordEntry&)>& fn) = 0;
  virtual void for_each_link(const std::function<void(const LinkEntry&)>& fn) = 0;

  // Another tenant's view inside the same transaction (entity sync fan-out writes every child
  // in one transaction). The returned Tx is valid while this one is. When that tenant lives in
  // another database, its database joins the transaction: it commits when this one does (see
  // sqlite/routing_store.cpp for what a crash between two databases' commits leaves).
  virtual Tx& scope(std::string_view tenant) = 0;
  // Deletes every record and link of this Tx's tenant.
  virtual void purge_tenant() = 0;
};

enum class Isolation { Shared, Database };
std::string_view to_string(Isolation isolation);
// "shared" | "database"; nullopt for anything else.
std::optional<Isolation> parse_isolation(std::string_view text);

// Not a registered tenant: no placement record and no data.
struct UnknownTenant : StoreError {
  using StoreError::StoreError;
};

class Store {
 public:
  virtual ~Store() = default;
  // Runs fn in a read transaction (a consistent snapshot).
  virtual void read(std::string_view tenant, const std::function<void(Tx&)>& fn) = 0;
  // Runs fn in a write transaction: committed when fn returns, rolled back if it throws
  // (the exception propagates). Committed writes are durable against a process crash.
  virtual void write(std::string_view tenant, const std::function<void(Tx&)>& fn) = 0;
  // Schema version after migrations.
  virtual int schema_version() = 0;

  // Where a tenant's data lives (Shared for a tenant never registered).
  virtual Isolation isolation(std::string_view tenant) = 0;
  // Registers a new tenant (with Database: creates its empty database). Throws Conflict if the
  // tenant is registered already or has data.
  virtual void create_tenant(std::string_view tenant, Isolation isolation) = 0;
  // Deletes every record and link of the tenant, its database file and its registration.
  // Idempotent.
  virtual void drop_tenant(std::string_view tenant) = 0;
  // Moves a live tenant's data to `to`, keeping ids, unique keys, documents, links and seq values;
  // its writes wait meanwhile. No-op if it is there already; UnknownTenant if it is not
  // registered and has no data.
  virtual void move_tenant(std::string_view tenant, Isolation to) = 0;
};

struct SqliteOptions {
  // Where per-tenant databases go ({tenants_dir}/{tenant}.db); default: "tenants" next to the
  // shared database file.
  std::string tenants_dir;
  // Per-tenant databases kept open (least recently used ones are closed beyond this; ones in use
  // by a transaction stay open until it ends). In-memory stores never close them.
  size_t max_open_tenant_databases = 128;
};

// Opens (creating if needed) the SQLite database at `path`, in WAL mode, and runs migrations.
// ":memory:" gives a private in-memory database (tests); its isolated tenants get in-memory
// databases of their own.
std::unique_ptr<Store> open_sqlite(const std::string& path, const SqliteOptions& options = {});

}  // namespace ks::store
