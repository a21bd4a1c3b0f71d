#include "core/tenancy/state.h"

#include <algorithm>

#include "core/engine_impl.h"
#include "core/tenancy/fallback.h"
#include "core/tenancy/tenants.h"

namespace ks::tenancy {

thread_local bool CachedOnly::active_ = false;

const store::Record* PlatformState::first_of_strategy(std::string_view strategy) const {
  auto it = first_by_strategy.find(strategy);
  return it == first_by_strategy.end() ? nullptr : &connections[it->second];
}

const store::Record* PlatformState::connection(std::string_view name) const {
  for (const auto& c : connections)
    if (c.data.value("name", "") == name) return &c;
  return nullptr;
}

HookSets load_hooks(store::Tx& tx, bool inherited) {
  HookSets sets;
  auto records = tx.list("hook", store::ListQuery::first(kMaxHooks));
  std::stable_sort(records.begin(), records.end(), [](const auto& a, const auto& b) {
    return a.data.value("priority", int64_t{0}) < b.data.value("priority", int64_t{0});
  });
  for (const auto& r : records) {
    const Json& d = r.data;
    if (!d.value("enabled", true)) continue;
    auto trigger = hooks::trigger_from_name(d.value("trigger_id", ""));
    if (!trigger) continue;
    if (inherited && (*trigger == hooks::Trigger::kSyncFilter ||
                      !d.value("metadata", Json::object()).value("inheritable", false)))
      continue;
    auto script = std::make_shared<hooks::Script>();
    script->tenant = tx.tenant();
    script->id = r.id;
    script->name = d.value("name", r.id);
    script->code = d.value("code", "");
    sets[static_cast<size_t>(*trigger)].push_back(std::move(script));
  }
  return sets;
}

void TenantState::remember(const std::string& key, std::shared_ptr<const void> value) const {
  std::lock_guard lock(memo_mu_);
  if (auto it = memos_.find(key); it != memos_.end()) {
    it->second = std::move(value);
  } else if (memos_.size() < kMaxMemos) {
    memos_.emplace(key, std::move(value));
  }
}

std::shared_ptr<const PlatformState> TenantStateCache::platform_at(store::Tx& cp, int64_t version) {
  {
    std::lock_guard lock(platform_mu_);
    if (platform_ && platform_->version == version) return platform_;
  }
  auto p = std::make_shared<PlatformState>();
  p->tenant = cp.tenant();
  p->version = version;
  if (auto r = cp.get(kTenantKind, cp.tenant())) {
    Json settings = r->data.value("settings", Json::object());
    if (settings.is_object()) p->settings = std::move(settings);
  }
  if (const std::string& id = e_.cfg().control_plane_client_id; !id.empty())
    if (auto r = cp.get("client", id)) p->client = std::move(r->data);
  p->connections = cp.list("connection", store::ListQuery::first(PlatformState::kMaxConnections));
  for (size_t i = 0; i < p->connections.size(); ++i)
    p->first_by_strategy.emplace(p->connections[i].data.value("strategy", ""), i);
  p->inherited_hooks = load_hooks(cp, /*inherited=*/true);
  std::lock_guard lock(platform_mu_);
  // Two readers may race; keep the newer.
  if (!platform_ || platform_->version <= version) platform_ = p;
  return p;
}

std::shared_ptr<const TenantState> TenantStateCache::get(std::string_view tenant) {
  std::shared_ptr<const TenantState> out;
  const std::string& cp_id = e_.cfg().control_plane_id;
  const bool control_plane = tenant == cp_id;
  // Begun on the tenant (the store re-routes it if another process moved it meanwhile); the
  // control plane, which never moves, joins. An unknown tenant reads the shared database.
  e_.store().read(tenant, [&](store::Tx& own_tx) {
    store::Tx& cp = control_plane ? own_tx : own_tx.scope(cp_id);
    const int64_t version = cp.state_version();
    const int64_t own = control_plane ? version : own_tx.state_version();
    auto hit = entries_.get(tenant);
    if (hit && (*hit)->platform->version == version && (*hit)->own_version == own) {
      out = *hit;
      return;
    }
    CachedOnly::check();
    // The tenant record and the control plane's state are read in this one snapshot, so the
    // state is exactly that of `version`.
    auto rec = cp.get(kTenantKind, tenant);
    if (!rec) return;
    auto s = std::make_shared<TenantState>();
    s->id = std::string(tenant);
    s->control_plane = control_plane;
    s->own_version = own;
    s->record = std::move(rec->data);
    s->platform = platform_at(cp, version);
    s->settings = effective_settings_of(s->record.value("settings", Json::object()),
                                        s->platform->settings, s->control_plane);
    s->hooks = load_hooks(own_tx, /*inherited=*/false);
    if (!control_plane)
      for (size_t i = 0; i < s->hooks.size(); ++i)
        s->hooks[i].insert(s->hooks[i].end(), s->platform->inherited_hooks[i].begin(),
                           s->platform->inherited_hooks[i].end());
    ++loads_;
    out = entries_.put(tenant, std::move(s));
  });
  return out;
}

}  // namespace ks::tenancy
