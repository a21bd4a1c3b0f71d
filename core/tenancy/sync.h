#pragma once
// Entity sync (DESIGN.md "Entity sync"): resource servers, roles and role permissions written on
// the control plane are copied to every child tenant, inside the control plane's write
// transaction (one transaction per store: all children get the change or none does).
//
// A copy keeps the control plane's id and carries `is_system: true` (plus a hidden `_synced`
// marker, so a tenant's own system resources are never mistaken for copies). A role permission
// is copied to a child exactly when the child holds copies of both the role and the resource
// server it names.
#include <string>
#include <string_view>

#include "core/json.h"
#include "core/store/store.h"

namespace ks {
class EngineImpl;
}

namespace ks::tenancy {

inline constexpr std::string_view kResourceServerKind = "resource_server";
inline constexpr std::string_view kRoleKind = "role";

// Throws the 403 for a change to a system resource on a child tenant; noun is "resource server"
// or "role".
[[noreturn]] void forbid_system_change(std::string_view noun);

class SyncService {
 public:
  // Besides the built-in rules, the control plane's enabled `sync-filter` hooks decide per entity
  // and child (shouldSync(kind, entity, targetTenant)); false keeps the entity off that child. A
  // failing filter fails the control plane's write with a 400 naming the hook and the tenant.
  explicit SyncService(EngineImpl& e) : e_(e) {}

  // After resource server `id` (whose identifier never changes) was created, updated or deleted
  // on the control plane, in the same transaction `cp`. Throws http::HttpError 409 naming the
  // tenant when a child already has its own resource server with that identifier.
  void resource_server_changed(store::Tx& cp, std::string_view id, std::string_view identifier);
  // After role `id`, or its permissions, was created, updated or deleted on the control plane.
  // 409 when a child already has its own role of that name.
  void role_changed(store::Tx& cp, std::string_view id);
  // Brings one child in line with the control plane: every synced entity copied, copies of
  // entities no longer synced removed. On a new tenant this copies everything syncable.
  void copy_all_to(store::Tx& cp, store::Tx& child);
  // copy_all_to for every child, in the control plane's write transaction `cp` (after the
  // control plane's `settings.sync` switches changed).
  void resync_all(store::Tx& cp);

  // The rules that do not depend on the target: not a system resource of the control plane,
  // metadata.sync not false, metadata.internal not true, identifier not "internal:…", and the
  // control plane's per-type switch (settings.sync.resource_servers / settings.sync.roles) on.
  bool syncable(store::Tx& cp, std::string_view kind, const Json& entity);

  // True if `entity` (a child's record) is a synced copy.
  static bool is_copy(const Json& entity);

 private:
  EngineImpl& e_;
};

}  // namespace ks::tenancy
