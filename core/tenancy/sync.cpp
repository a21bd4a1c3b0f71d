#include "core/tenancy/sync.h"

#include <optional>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/engine_impl.h"
#include "core/http/http.h"
#include "core/mgmt/scopes.h"
#include "core/tenancy/state.h"
#include "core/tenancy/tenants.h"

namespace ks::tenancy {
namespace {

// Rows per page when walking tenants, entities and links: bounded memory at any scale.
constexpr size_t kPage = 500;
constexpr const char* kMarker = "_synced";
constexpr std::string_view kInternalPrefix = "internal:";
constexpr std::string_view kRolePermission = "role_permission";

// Role permissions of the control plane that name one resource server: (role id, permission key).
using Pairs = std::vector<std::pair<std::string, std::string>>;
using LazyPairs = std::function<const Pairs&()>;

struct Switches {
  bool resource_servers = true;
  bool roles = true;
};

const char* key_member(std::string_view kind) { return kind == kRoleKind ? "name" : "identifier"; }

std::string string_member(const Json& e, const char* name) {
  auto it = e.find(name);
  return it != e.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// A metadata flag: a boolean, or the strings "true"/"false" (Auth0 metadata values are strings).
std::optional<bool> metadata_flag(const Json& e, const char* name) {
  auto m = e.find("metadata");
  if (m == e.end() || !m->is_object()) return std::nullopt;
  auto v = m->find(name);
  if (v == m->end()) return std::nullopt;
  if (v->is_boolean()) return v->get<bool>();
  if (v->is_string() && *v == "true") return true;
  if (v->is_string() && *v == "false") return false;
  return std::nullopt;
}

bool switched_off(const Json& sync, const char* name) {
  auto it = sync.find(name);
  return it != sync.end() && it->is_boolean() && !it->get<bool>();
}

// settings.sync.{resource_servers,roles} of the control plane's tenant record (default on).
Switches read_switches(store::Tx& cp, const std::string& cp_id) {
  Switches sw;
  auto rec = cp.get(kTenantKind, cp_id);
  if (!rec) return sw;
  auto settings = rec->data.find("settings");
  if (settings == rec->data.end() || !settings->is_object()) return sw;
  auto sync = settings->find("sync");
  if (sync == settings->end() || !sync->is_object()) return sw;
  sw.resource_servers = !switched_off(*sync, "resource_servers");
  sw.roles = !switched_off(*sync, "roles");
  return sw;
}

bool eligible(std::string_view kind, const Json& e, const Switches& sw) {
  if (auto s = e.find("is_system"); s != e.end() && s->is_boolean() && s->get<bool>())
    return false;  // the control plane's own system resources (its management API)
  const std::string key = string_member(e, key_member(kind));
  if (kind == kResourceServerKind && key == mgmt::kManagementAudience) return false;
  if (key.starts_with(kInternalPrefix)) return false;
  if (metadata_flag(e, "sync") == std::optional<bool>(false)) return false;
  if (metadata_flag(e, "internal") == std::optional<bool>(true)) return false;
  return kind == kResourceServerKind ? sw.resource_servers : sw.roles;
}

// Calls fn for every child tenant (every tenant record but the control plane's, suspended ones
// included), a page at a time.
void for_each_child(store::Tx& cp, const std::string& cp_id,
                    const std::function<void(const std::string&)>& fn) {
  store::ListQuery q;
  q.limit = kPage;
  for (;;) {
    auto page = cp.list(kTenantKind, q);
    for (const auto& r : page)
      if (r.id != cp_id) fn(r.id);
    if (page.size() < q.limit) return;
    q.after_seq = page.back().seq;
  }
}

template <typename Fn>
void for_each_record(store::Tx& tx, std::string_view kind, Fn&& fn) {
  store::ListQuery q;
  q.limit = kPage;
  for (;;) {
    auto page = tx.list(kind, q);
    for (const auto& r : page) fn(r);
    if (page.size() < q.limit) return;
    q.after_seq = page.back().seq;
  }
}

std::vector<std::string> permission_keys_of(store::Tx& tx, std::string_view role_id) {
  std::vector<std::string> out;
  store::ListQuery q;
  q.limit = kPage;
  for (;;) {
    auto page = tx.links_from(kRolePermission, role_id, q);
    for (const auto& l : page) out.push_back(l.to);
    if (page.size() < q.limit) return out;
    q.after_seq = page.back().seq;
  }
}

std::string identifier_of_key(std::string_view key) {
  return std::string(key.substr(0, key.find('\n')));
}

[[noreturn]] void conflict(std::string_view tenant, std::string_view kind, std::string_view key) {
  const bool role = kind == kRoleKind;
  throw http::HttpError{409,
                        "Tenant '" + std::string(tenant) + "' already has its own " +
                            (role ? "role named '" : "resource server with identifier '") +
                            std::string(key) + "'; the control plane's " +
                            (role ? "role" : "resource server") + " cannot be synced to it",
                        "conflict"};
}

Json make_copy(const Json& doc) {
  Json c = doc;
  // Secrets are never copied to children (a resource server's HS256 signing_secret).
  c.erase("signing_secret");
  c["is_system"] = true;
  c[kMarker] = true;
  return c;
}

// Makes `c` hold a copy of the control plane's resource server `doc`, or no copy when doc is
// null. pairs() gives the control-plane role permissions that name this resource server.
void apply_rs(store::Tx& c, std::string_view id, std::string_view identifier, const Json* doc,
              const LazyPairs& pairs) {
  auto cur = c.get(kResourceServerKind, id);
  const bool had = cur && SyncService::is_copy(cur->data);
  if (doc) {
    if (cur && !had) conflict(c.tenant(), kResourceServerKind, identifier);
    try {
      if (had)
        c.update(kResourceServerKind, id, make_copy(*doc), identifier);
      else
        c.insert(kResourceServerKind, id, make_copy(*doc), identifier);
    } catch (const store::Conflict&) {
      conflict(c.tenant(), kResourceServerKind, identifier);
    }
    if (!had)
      for (const auto& [role, key] : pairs())
        if (auto r = c.get(kRoleKind, role); r && SyncService::is_copy(r->data))
          c.link(kRolePermission, role, key);
    return;
  }
  if (!had) return;
  for (const auto& [role, key] : pairs()) c.unlink(kRolePermission, role, key);
  // As deleting a resource server does: its client grants go with it.
  store::ListQuery q;
  q.field = "audience";
  q.value = std::string(identifier);
  q.limit = kPage;
  for (;;) {
    auto grants = c.list("client_grant", q);
    for (const auto& g : grants) c.remove("client_grant", g.id);
    if (grants.size() < q.limit) break;
    q.after_seq = grants.back().seq;
  }
  c.remove(kResourceServerKind, id);
}

// Makes `c` hold a copy of the control plane's role `doc` with the permissions `keys` whose
// resource server `c` holds a copy of (rs_ids: identifier -> control-plane resource server id),
// or no copy when doc is null.
void apply_role(store::Tx& c, std::string_view id, const Json* doc,
                const std::vector<std::string>& keys,
                const std::unordered_map<std::string, std::string>& rs_ids) {
  auto cur = c.get(kRoleKind, id);
  const bool had = cur && SyncService::is_copy(cur->data);
  if (!doc) {
    if (!had) return;
    // As deleting a role does: its permissions and assignments go with it.
    c.unlink_from(kRolePermission, id);
    c.unlink_to("user_role", id);
    c.unlink_to("org_member_role", id);
    c.remove(kRoleKind, id);
    return;
  }
  const std::string name = string_member(*doc, "name");
  if (cur && !had) conflict(c.tenant(), kRoleKind, name);
  try {
    if (had)
      c.update(kRoleKind, id, make_copy(*doc), name);
    else
      c.insert(kRoleKind, id, make_copy(*doc), name);
  } catch (const store::Conflict&) {
    conflict(c.tenant(), kRoleKind, name);
  }
  std::unordered_map<std::string, bool> held;  // identifier -> c holds the resource server copy
  std::set<std::string> want;
  for (const auto& key : keys) {
    auto [it, fresh] = held.try_emplace(identifier_of_key(key), false);
    if (fresh)
      if (auto rs = rs_ids.find(it->first); rs != rs_ids.end()) {
        auto r = c.get(kResourceServerKind, rs->second);
        it->second = r && SyncService::is_copy(r->data);
      }
    if (it->second) want.insert(key);
  }
  for (const auto& have : permission_keys_of(c, id))
    if (!want.erase(have)) c.unlink(kRolePermission, id, have);
  for (const auto& key : want) c.link(kRolePermission, id, key);
}

// Everything of the control plane that sync needs, read once for any number of children.
struct Snapshot {
  Switches sw;
  std::vector<store::Record> rss;
  std::vector<store::Record> roles;
  std::unordered_map<std::string, std::vector<std::string>> keys;  // role id -> permission keys
  std::unordered_map<std::string, std::string> rs_ids;             // identifier -> id
  std::unordered_map<std::string, Pairs> pairs;                    // identifier -> pairs

  Snapshot(store::Tx& cp, const std::string& cp_id) : sw(read_switches(cp, cp_id)) {
    for_each_record(cp, kResourceServerKind, [&](const store::Record& r) {
      rs_ids[string_member(r.data, "identifier")] = r.id;
      rss.push_back(r);
    });
    for_each_record(cp, kRoleKind, [&](const store::Record& r) {
      auto& k = keys[r.id] = permission_keys_of(cp, r.id);
      for (const auto& key : k) pairs[identifier_of_key(key)].emplace_back(r.id, key);
      roles.push_back(r);
    });
  }

  const Pairs& pairs_of(const std::string& identifier) const {
    static const Pairs kNone;
    auto it = pairs.find(identifier);
    return it == pairs.end() ? kNone : it->second;
  }
};

// The control plane's sync-filter hooks for one sync operation, read once from its transaction.
// Without such hooks (or a hook runtime) it lets everything through and costs nothing per child.
class HookFilter {
 public:
  HookFilter(EngineImpl& e, store::Tx& cp) : runner_(e.hook_runner()), cp_(cp) {
    if (runner_)
      scripts_ = std::move(
          load_hooks(cp, /*inherited=*/false)[static_cast<size_t>(hooks::Trigger::kSyncFilter)]);
  }

  bool operator()(std::string_view kind, const Json& entity, const std::string& target) const {
    if (scripts_.empty()) return true;
    Json view = Json::object();
    for (const auto& [k, v] : entity.items())
      if (!k.starts_with('_')) view[k] = v;
    Json tenant = {{"id", target}};
    if (auto t = cp_.get(kTenantKind, target))
      for (const char* k : {"friendly_name", "metadata", "environment"})
        if (t->data.contains(k)) tenant[k] = t->data[k];
    const auto out = runner_->run(hooks::Trigger::kSyncFilter, scripts_,
                                  {{"kind", kind}, {"entity", view}, {"targetTenant", tenant}});
    if (out.error)
      throw http::HttpError{400, "Sync filter failed for tenant '" + target + "': " + *out.error,
                            "hook_error"};
    return out.sync;
  }

 private:
  hooks::HookRunner* runner_;
  store::Tx& cp_;
  hooks::Scripts scripts_;
};

}  // namespace

[[noreturn]] void forbid_system_change(std::string_view noun) {
  throw http::HttpError{403,
                        "This " + std::string(noun) +
                            " is a system resource and cannot be modified. Make changes in the "
                            "control plane instead.",
                        "operation_not_supported"};
}

bool SyncService::is_copy(const Json& entity) {
  auto it = entity.find(kMarker);
  return it != entity.end() && it->is_boolean() && it->get<bool>();
}

bool SyncService::syncable(store::Tx& cp, std::string_view kind, const Json& entity) {
  return eligible(kind, entity, read_switches(cp, e_.cfg().control_plane_id));
}

void SyncService::resource_server_changed(store::Tx& cp, std::string_view id,
                                          std::string_view identifier) {
  const std::string& cp_id = e_.cfg().control_plane_id;
  auto rec = cp.get(kResourceServerKind, id);
  const bool ok = rec && eligible(kResourceServerKind, rec->data, read_switches(cp, cp_id));
  std::optional<Pairs> pairs;  // read from the control plane once, when a child first needs it
  const LazyPairs lazy = [&]() -> const Pairs& {
    if (!pairs) {
      pairs.emplace();
      const std::string prefix = std::string(identifier) + "\n";
      for_each_record(cp, kRoleKind, [&](const store::Record& r) {
        for (auto& key : permission_keys_of(cp, r.id))
          if (key.starts_with(prefix)) pairs->emplace_back(r.id, std::move(key));
      });
    }
    return *pairs;
  };
  const HookFilter filter(e_, cp);
  for_each_child(cp, cp_id, [&](const std::string& child) {
    const bool want = ok && filter(kResourceServerKind, rec->data, child);
    apply_rs(cp.scope(child), id, identifier, want ? &rec->data : nullptr, lazy);
  });
}

void SyncService::role_changed(store::Tx& cp, std::string_view id) {
  const std::string& cp_id = e_.cfg().control_plane_id;
  auto rec = cp.get(kRoleKind, id);
  const bool ok = rec && eligible(kRoleKind, rec->data, read_switches(cp, cp_id));
  std::vector<std::string> keys;
  std::unordered_map<std::string, std::string> rs_ids;
  if (ok) {
    keys = permission_keys_of(cp, id);
    for (const auto& key : keys) {
      const std::string identifier = identifier_of_key(key);
      if (rs_ids.count(identifier)) continue;
      if (auto rs = cp.find(kResourceServerKind, identifier)) rs_ids[identifier] = rs->id;
    }
  }
  const HookFilter filter(e_, cp);
  for_each_child(cp, cp_id, [&](const std::string& child) {
    const bool want = ok && filter(kRoleKind, rec->data, child);
    apply_role(cp.scope(child), id, want ? &rec->data : nullptr, keys, rs_ids);
  });
}

namespace {

void reconcile(const Snapshot& s, store::Tx& child, const HookFilter& filter) {
  const std::string& target = child.tenant();
  auto wanted = [&](std::string_view kind, const Json& e) {
    return eligible(kind, e, s.sw) && filter(kind, e, target);
  };
  std::unordered_set<std::string> known;
  for (const auto& r : s.rss) {
    known.insert(r.id);
    const std::string identifier = string_member(r.data, "identifier");
    const Pairs& p = s.pairs_of(identifier);
    apply_rs(child, r.id, identifier, wanted(kResourceServerKind, r.data) ? &r.data : nullptr,
             [&]() -> const Pairs& { return p; });
  }
  // Copies whose original is gone (e.g. an older store): removed.
  std::vector<std::pair<std::string, std::string>> stale;
  for_each_record(child, kResourceServerKind, [&](const store::Record& r) {
    if (SyncService::is_copy(r.data) && !known.count(r.id))
      stale.emplace_back(r.id, string_member(r.data, "identifier"));
  });
  for (const auto& [id, identifier] : stale) {
    const Pairs& p = s.pairs_of(identifier);
    apply_rs(child, id, identifier, nullptr, [&]() -> const Pairs& { return p; });
  }

  static const std::vector<std::string> kNoKeys;
  known.clear();
  for (const auto& r : s.roles) {
    known.insert(r.id);
    auto k = s.keys.find(r.id);
    apply_role(child, r.id, wanted(kRoleKind, r.data) ? &r.data : nullptr,
               k == s.keys.end() ? kNoKeys : k->second, s.rs_ids);
  }
  std::vector<std::string> stale_roles;
  for_each_record(child, kRoleKind, [&](const store::Record& r) {
    if (SyncService::is_copy(r.data) && !known.count(r.id)) stale_roles.push_back(r.id);
  });
  for (const auto& id : stale_roles) apply_role(child, id, nullptr, kNoKeys, s.rs_ids);
}

}  // namespace

void SyncService::copy_all_to(store::Tx& cp, store::Tx& child) {
  reconcile(Snapshot(cp, e_.cfg().control_plane_id), child, HookFilter(e_, cp));
}

void SyncService::resync_all(store::Tx& cp) {
  const std::string& cp_id = e_.cfg().control_plane_id;
  const Snapshot s(cp, cp_id);
  const HookFilter filter(e_, cp);
  for_each_child(cp, cp_id,
                 [&](const std::string& child) { reconcile(s, cp.scope(child), filter); });
}

}  // namespace ks::tenancy
