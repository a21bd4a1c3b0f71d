#include "core/tenancy/export.h"

#include <algorithm>
#include <cctype>
#include <unordered_set>

#include "core/engine_impl.h"
#include "core/model/ids.h"
#include "core/model/schema.h"
#include "core/oidc/flow.h"
#include "core/tenancy/fallback.h"
#include "core/tenancy/sync.h"
#include "core/tenancy/tenants.h"

namespace ks::tenancy {
namespace {

constexpr std::string_view kOrganizationKind = "organization";
constexpr std::string_view kRolePermission = "role_permission";

// State of a flow in progress that lives seconds: not worth carrying into a copy.
bool transient(std::string_view kind) { return kind == "auth_code" || kind == "login_tx"; }

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

[[noreturn]] void bad(const std::string& message) {
  throw http::HttpError{400, "Invalid tenant export: " + message, "invalid_body"};
}

const Json& member(const Json& object, const char* name, const std::string& where) {
  auto it = object.find(name);
  if (it == object.end()) bad(where + "." + name + " is missing");
  return *it;
}

std::string string_member(const Json& object, const char* name, const std::string& where,
                          bool allow_empty = false) {
  const Json& v = member(object, name, where);
  if (!v.is_string() || (!allow_empty && v.get_ref<const std::string&>().empty()))
    bad(where + "." + name + " must be a " + (allow_empty ? "" : "non-empty ") + "string");
  return v.get<std::string>();
}

const Json& array_member(const Json& object, const char* name) {
  const Json& v = member(object, name, "document");
  if (!v.is_array()) bad(std::string(name) + " must be an array");
  return v;
}

std::optional<store::Isolation> isolation_of(const Json& tenant, const std::string& fallback) {
  auto it = tenant.find("isolation");
  if (it == tenant.end() || it->is_null()) return store::parse_isolation(fallback);
  if (!it->is_string()) return std::nullopt;
  return store::parse_isolation(it->get<std::string>());
}

// What an import will write, checked before anything is created.
struct Plan {
  std::string id;
  Json tenant;
  Json organization;
  store::Isolation isolation = store::Isolation::Shared;
};

Plan check_document(EngineImpl& e, const Json& doc, const ImportOptions& options) {
  const auto& cfg = e.cfg();
  if (!doc.is_object()) bad("the document must be a JSON object");
  if (doc.value("format", Json()) != kExportFormat)
    bad("format must be \"" + std::string(kExportFormat) + "\"");
  const Json& version = member(doc, "version", "document");
  if (!version.is_number_integer() || version.get<int64_t>() != kExportVersion)
    bad("unsupported version " + version.dump() + " (this build reads version " +
        std::to_string(kExportVersion) + ")");

  Plan p;
  p.tenant = member(doc, "tenant", "document");
  if (!p.tenant.is_object()) bad("tenant must be an object");
  p.id = string_member(p.tenant, "id", "tenant");
  if (!model::valid_tenant_id(p.id))
    throw http::HttpError{400,
                          "Invalid tenant id '" + p.id + "': must match ^[a-z0-9][a-z0-9_-]{0,62}$",
                          "invalid_tenant_id"};
  if (p.id == cfg.control_plane_id) bad("the control plane cannot be imported");
  if (std::find(cfg.reserved_ids.begin(), cfg.reserved_ids.end(), p.id) != cfg.reserved_ids.end())
    throw http::HttpError{400, "The tenant id '" + p.id + "' is reserved", "reserved_tenant_id"};

  std::string status = "active";
  if (options.status) {
    status = *options.status;
  } else if (auto s = p.tenant.find("status"); s != p.tenant.end()) {
    status = s->is_string() ? s->get<std::string>() : std::string();
  }
  if (status != "active" && status != "suspended")
    bad("tenant status must be \"active\" or \"suspended\"");
  p.tenant["status"] = status;
  if (options.isolation) {
    p.isolation = *options.isolation;
  } else if (auto iso = isolation_of(p.tenant, cfg.default_isolation)) {
    p.isolation = *iso;
  } else {
    bad("tenant.isolation must be \"shared\" or \"database\"");
  }
  p.tenant["isolation"] = std::string(store::to_string(p.isolation));
  Json domains = p.tenant.value("custom_domains", Json::array());
  if (!domains.is_array()) bad("tenant.custom_domains must be an array");
  for (auto& d : domains) {
    if (!d.is_string() || d.get_ref<const std::string&>().empty())
      bad("tenant.custom_domains must hold host names");
    d = lower(d.get<std::string>());
  }
  p.tenant["custom_domains"] = domains;
  if (!p.tenant.value("settings", Json::object()).is_object())
    bad("tenant.settings must be an object");

  // null: the tenant had no organization (it gets a new one, as a created tenant does).
  p.organization = doc.value("organization", Json());
  if (p.organization.is_null()) {
    p.organization = {{"id", model::new_prefixed_id("org", e.rng())},
                      {"name", p.id},
                      {"display_name", p.tenant.value("friendly_name", Json(p.id))},
                      {"created_at", iso8601(e.clock().now_ms())}};
  }
  if (!p.organization.is_object()) bad("organization must be an object or null");
  string_member(p.organization, "id", "organization");
  if (string_member(p.organization, "name", "organization") != p.id)
    bad("organization.name must be the tenant id '" + p.id + "'");

  const Json& records = array_member(doc, "records");
  for (size_t i = 0; i < records.size(); ++i) {
    const std::string where = "records[" + std::to_string(i) + "]";
    const Json& r = records[i];
    if (!r.is_object()) bad(where + " must be an object");
    string_member(r, "kind", where);
    string_member(r, "id", where);
    if (auto k = r.find("key"); k != r.end() && !k->is_null() && !k->is_string())
      bad(where + ".key must be a string or null");
    member(r, "data", where);
  }
  const Json& links = array_member(doc, "links");
  for (size_t i = 0; i < links.size(); ++i) {
    const std::string where = "links[" + std::to_string(i) + "]";
    const Json& l = links[i];
    if (!l.is_object()) bad(where + " must be an object");
    string_member(l, "rel", where);
    string_member(l, "from", where, true);
    string_member(l, "to", where, true);
  }
  return p;
}

void log_outcome(EngineImpl& e, std::string_view id, std::string_view error, size_t records,
                 size_t links) {
  Json details = {{"tenant_id", std::string(id)},
                  {"operation", "import"},
                  {"records", records},
                  {"links", links},
                  {"succeeded", error.empty()}};
  if (!error.empty()) details["error"] = std::string(error);
  try {
    oidc::log_event(e, e.cfg().control_plane_id, error.empty() ? "sapi" : "fapi",
                    {{"description", error.empty() ? "Tenant import succeeded"
                                                   : "Tenant import failed: " + std::string(error)},
                     {"details", details}});
  } catch (const std::exception&) {
    // The log records the operation; it is not part of it.
  }
}

}  // namespace

Json export_tenant(EngineImpl& e, std::string_view id) {
  const std::string& cp_id = e.cfg().control_plane_id;
  if (id == cp_id)
    throw http::HttpError{403, "The control plane cannot be exported", "operation_not_supported"};
  Json doc = {{"format", kExportFormat},
              {"version", kExportVersion},
              {"exported_at", iso8601(e.clock().now_ms())}};
  Json records = Json::array();
  Json links = Json::array();
  // One read transaction: the tenant record, its organization and its data are one snapshot.
  e.store().read(cp_id, [&](store::Tx& cp) {
    auto rec = cp.get(kTenantKind, id);
    if (!rec) throw http::HttpError{404, "The tenant does not exist", "inexistent_tenant"};
    doc["tenant"] = rec->data;
    doc["organization"] = nullptr;
    if (auto org = cp.find(kOrganizationKind, id);
        org && org->data.value("metadata", Json::object()).value("tenant_id", "") == id)
      doc["organization"] = org->data;
    store::Tx& tx = cp.scope(id);
    std::unordered_set<std::string> synced_roles;
    tx.for_each_record([&](const store::RecordEntry& r) {
      if (transient(r.kind)) return;
      if (r.record.data.is_object() && SyncService::is_copy(r.record.data)) {
        if (r.kind == kRoleKind) synced_roles.insert(r.record.id);
        return;
      }
      records.push_back({{"kind", r.kind},
                         {"id", r.record.id},
                         {"key", r.unique_key.empty() ? Json(nullptr) : Json(r.unique_key)},
                         {"data", r.record.data}});
    });
    tx.for_each_link([&](const store::LinkEntry& l) {
      // A synced role's permissions come back with the role; assignments of it to the tenant's
      // users and organization members are the tenant's own and are kept.
      if (l.rel == kRolePermission && synced_roles.count(l.link.from)) return;
      links.push_back(
          {{"rel", l.rel}, {"from", l.link.from}, {"to", l.link.to}, {"data", l.link.data}});
    });
  });
  doc["records"] = std::move(records);
  doc["links"] = std::move(links);
  return doc;
}

Json import_tenant(EngineImpl& e, const Json& doc, const ImportOptions& options) {
  Plan p = check_document(e, doc, options);
  const std::string& cp_id = e.cfg().control_plane_id;
  const std::string& id = p.id;
  auto exists = [&] {
    return http::HttpError{409, "A tenant with id '" + id + "' already exists", "conflict"};
  };
  if (e.tenants().get(id)) throw exists();

  const Json& records = doc["records"];
  const Json& links = doc["links"];
  try {
    e.store().create_tenant(id, p.isolation);
  } catch (const store::Conflict&) {
    throw exists();
  }
  try {
    e.store().write(cp_id, [&](store::Tx& cp) {
      if (cp.get(kTenantKind, id)) throw exists();
      for (const auto& d : p.tenant["custom_domains"]) {
        const std::string host = d.get<std::string>();
        if (cp.get(kCustomDomainKind, host))
          throw http::HttpError{409, "Custom domain " + host + " is already in use", "conflict"};
      }
      check_settings_constraints(cp, cp_id, id, p.tenant.value("settings", Json::object()));

      // The organization keeps its id (the org_id of tokens) unless another one has it now.
      if (cp.find(kOrganizationKind, id))
        throw http::HttpError{409, "An organization named '" + id + "' already exists", "conflict"};
      Json org = p.organization;
      std::string org_id = org["id"];
      if (cp.get(kOrganizationKind, org_id)) org_id = model::new_prefixed_id("org", e.rng());
      org["id"] = org_id;
      org["metadata"] = org.value("metadata", Json::object());
      if (!org["metadata"].is_object()) org["metadata"] = Json::object();
      org["metadata"]["tenant_id"] = id;
      cp.insert(kOrganizationKind, org_id, org, id);

      Json rec = p.tenant;
      rec["organization_id"] = org_id;
      rec["updated_at"] = iso8601(e.clock().now_ms());
      cp.insert(kTenantKind, id, rec);
      for (const auto& d : rec["custom_domains"])
        cp.insert(kCustomDomainKind, d.get<std::string>(), {{"tenant_id", id}});

      store::Tx& tx = cp.scope(id);
      for (size_t i = 0; i < records.size(); ++i) {
        const Json& r = records[i];
        const Json& key = r.value("key", Json());
        try {
          tx.insert(r["kind"].get<std::string>(), r["id"].get<std::string>(), r["data"],
                    key.is_string() ? key.get<std::string>() : std::string());
        } catch (const store::Conflict&) {
          bad("records[" + std::to_string(i) + "] repeats the id or unique key of another " +
              r["kind"].get<std::string>());
        }
      }
      for (const auto& l : links)
        tx.link(l["rel"].get<std::string>(), l["from"].get<std::string>(),
                l["to"].get<std::string>(), l.value("data", Json()));
      // Synced entities come from the control plane as they are now.
      e.sync().copy_all_to(cp, tx);
      p.tenant = std::move(rec);
    });
  } catch (const http::HttpError& err) {
    e.store().drop_tenant(id);
    log_outcome(e, id, err.message, records.size(), links.size());
    throw;
  } catch (const store::Conflict& err) {  // a concurrent create took a name first
    e.store().drop_tenant(id);
    log_outcome(e, id, err.what(), records.size(), links.size());
    throw http::HttpError{409, "The tenant, its organization or a custom domain already exists",
                          "conflict"};
  } catch (const std::exception& err) {
    e.store().drop_tenant(id);
    log_outcome(e, id, err.what(), records.size(), links.size());
    throw;
  }
  e.keys().forget(id);
  log_outcome(e, id, "", records.size(), links.size());
  return TenantService::view(p.tenant);
}

}  // namespace ks::tenancy
