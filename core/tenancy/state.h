#pragma once
// Per-tenant state the flows read on every request — the tenant record, its effective settings,
// and what a child inherits from the control plane (its settings, fallback client, connections) —
// read once and cached, with bounded memory, however many tenants there are.
//
// Invalidation is by version, not by time: the store raises a tenant's state version with every
// write of its tenant record, clients, connections, keys, … (store.h kStateKinds), whichever
// process writes (this server, the `keystead` CLI, another server on the same files). A lookup
// reads two integers (the control plane's version and the tenant's) and reuses the cached state
// while they are unchanged; so a request always sees every write committed before it began.
#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/hooks.h"
#include "core/json.h"
#include "core/lru.h"
#include "core/store/store.h"

namespace ks {
class EngineImpl;
}

namespace ks::tenancy {

// While a CachedOnly lives on a thread, computing what is not cached — loading a tenant's state,
// making a memo — throws NotCached instead (Engine::handle_inline: event loops answer only from
// memory and leave the rest to worker threads). NotCached is not a std::exception, so no
// handler's error mapping turns it into a response.
struct NotCached {};
class CachedOnly {
 public:
  CachedOnly() : previous_(active_) { active_ = true; }
  ~CachedOnly() { active_ = previous_; }
  CachedOnly(const CachedOnly&) = delete;
  CachedOnly& operator=(const CachedOnly&) = delete;
  // Throws NotCached when a CachedOnly is active on this thread.
  static void check() {
    if (active_) throw NotCached{};
  }

 private:
  bool previous_;
  static thread_local bool active_;
};

// Enabled hooks by trigger (index: static_cast<size_t>(hooks::Trigger)), in run order: priority
// ascending, then creation.
using HookSets = std::array<hooks::Scripts, std::size(hooks::kTriggers)>;
inline constexpr size_t kMaxHooks = 50;  // per tenant

// The enabled hooks of tx's tenant by trigger, in run order; with `inherited`, only those a child
// inherits (metadata.inheritable = true, sync filters excepted).
HookSets load_hooks(store::Tx& tx, bool inherited);

// What every child inherits from the control plane, read once per control-plane version and
// shared by all children's states.
struct PlatformState {
  std::string tenant;                      // the control plane's id
  int64_t version = 0;                     // the control plane's state version it was read at
  Json settings = Json::object();          // the control plane's stored settings
  std::optional<Json> client;              // KEYSTEAD_CONTROL_PLANE_CLIENT_ID's client, if any
  std::vector<store::Record> connections;  // in creation order (at most kMaxConnections)
  std::map<std::string, size_t, std::less<>> first_by_strategy;  // index into connections
  // The control plane's hooks with metadata.inheritable = true (sync filters excepted): they run
  // for every child, after the child's own.
  HookSets inherited_hooks;

  static constexpr size_t kMaxConnections = 1000;

  // The first connection of a strategy (in creation order), or nullptr.
  const store::Record* first_of_strategy(std::string_view strategy) const;
  // The connection of that name, or nullptr.
  const store::Record* connection(std::string_view name) const;
};

struct TenantState {
  std::string id;
  bool control_plane = false;
  int64_t own_version = 0;  // the tenant's own state version (its clients, keys, APIs, grants …)
  Json record;              // the stored tenant record (status, friendly_name, custom_domains …)
  Json settings;            // effective settings (tenancy::effective_settings_of)
  std::shared_ptr<const PlatformState> platform;
  HookSets hooks;  // what runs here: the tenant's own enabled hooks, then the inherited ones

  // The scripts a trigger runs on this tenant; empty (and nothing to pay) for most tenants.
  const hooks::Scripts& hooks_for(hooks::Trigger t) const { return hooks[static_cast<size_t>(t)]; }

  std::string status() const { return record.value("status", "active"); }
  std::string friendly_name() const { return record.value("friendly_name", id); }

  // Values derived from the tenant's own state (its JWKS, current signing key, clients …),
  // computed on first use and kept with this state: a state write makes a new TenantState, so
  // they never outlive what they were derived from. At most kMaxMemos per tenant; beyond that
  // they are computed and not kept. `make` runs outside any lock and may return nullptr
  // (nothing to keep: e.g. an unknown client).
  static constexpr size_t kMaxMemos = 16;
  template <typename T, typename Make>
  std::shared_ptr<const T> memo(const std::string& key, Make&& make) const {
    {
      std::lock_guard lock(memo_mu_);
      if (auto it = memos_.find(key); it != memos_.end())
        return std::static_pointer_cast<const T>(it->second);
    }
    CachedOnly::check();
    std::shared_ptr<const T> value = make();
    if (value) remember(key, value);
    return value;
  }
  // memo() for a value that also goes stale at a time: T has an `int64_t valid_until` (seconds;
  // e.g. when a previous signing key stops being published). `now` in seconds.
  template <typename T, typename Make>
  std::shared_ptr<const T> memo_until(const std::string& key, int64_t now, Make&& make) const {
    std::shared_ptr<const T> value = memo<T>(key, make);
    if (value && now >= value->valid_until) {
      CachedOnly::check();
      value = make();
      if (value) remember(key, value);
    }
    return value;
  }
  // Replaces a kept value (one that went stale with time, such as a JWKS past a key's retirement).
  void remember(const std::string& key, std::shared_ptr<const void> value) const;

 private:
  mutable std::mutex memo_mu_;
  mutable std::map<std::string, std::shared_ptr<const void>, std::less<>> memos_;
};

class TenantStateCache {
 public:
  // States kept: a few KiB each for typical settings; unknown tenants are never cached.
  static constexpr size_t kCachedTenants = 10000;

  explicit TenantStateCache(EngineImpl& e, size_t capacity = kCachedTenants)
      : e_(e), entries_(capacity) {}

  // The tenant's current state; nullptr if there is no such tenant. Reads the state versions of
  // the control plane and of the tenant, and the state itself only when one changed or the tenant
  // is not cached. Not to be called inside a transaction (it runs its own).
  std::shared_ptr<const TenantState> get(std::string_view tenant);

  // For tests and metrics: how many states were read from the store, and how many are cached.
  size_t loads() const { return loads_.load(); }
  size_t size() const { return entries_.size(); }

 private:
  std::shared_ptr<const PlatformState> platform_at(store::Tx& cp, int64_t version);

  EngineImpl& e_;
  LruCache<std::shared_ptr<const TenantState>> entries_;
  std::mutex platform_mu_;
  std::shared_ptr<const PlatformState> platform_;
  std::atomic<size_t> loads_{0};
};

}  // namespace ks::tenancy
