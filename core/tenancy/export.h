#pragma once
// Export and import of one child tenant as a JSON document (DESIGN.md "Tenancy", Lifecycle;
// docs/operations.md, "Export and import"):
//
//   {"format": "keystead-tenant-export", "version": 1, "exported_at": "<ISO 8601>",
//    "tenant": <its control-plane record>, "organization": <its control-plane organization>,
//    "records": [{"kind", "id", "key", "data"}], "links": [{"rel", "from", "to", "data"}]}
//
// records and links are everything the tenant's store holds, in seq order, read in one
// transaction, minus what does not belong in a copy: synced copies of control-plane entities
// (and the permissions of synced roles), which the import takes from the control plane again,
// and the flows' short-lived state (authorization codes, login transactions). Sessions, refresh
// tokens, signing keys, tickets and logs are kept. Documents are exported as stored: secrets stay
// sealed under the master key with the tenant id in their associated data, so an export imports
// only into a deployment with the same master key, and under the same tenant id. The
// organization's members (control-plane users) are not part of it.
#include <optional>
#include <string>

#include "core/json.h"
#include "core/store/store.h"

namespace ks {
class EngineImpl;
}

namespace ks::tenancy {

inline constexpr std::string_view kExportFormat = "keystead-tenant-export";
inline constexpr int kExportVersion = 1;

// The export document of child tenant `id`. Throws http::HttpError 404 (unknown tenant), 403
// (the control plane).
Json export_tenant(EngineImpl& e, std::string_view id);

struct ImportOptions {
  std::optional<std::string> status;          // "active" | "suspended"; default: as exported
  std::optional<store::Isolation> isolation;  // default: as exported
};

// Creates the tenant of an export document with everything in it, all or nothing: its store
// registration (and database, when isolated), then one control-plane transaction with the tenant
// record, its organization, its custom domains, its records and links and the control plane's
// synced entities. Throws http::HttpError 400 (a malformed document: nothing is created), 409
// (the tenant id, the organization name or a custom domain is taken), 422 (its settings break the
// control plane's constraints). Returns the public tenant representation.
Json import_tenant(EngineImpl& e, const Json& doc, const ImportOptions& options = {});

}  // namespace ks::tenancy
