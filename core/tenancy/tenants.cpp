#include "core/tenancy/tenants.h"

#include <algorithm>

#include "core/engine_impl.h"
#include "core/mgmt/common.h"
#include "core/mgmt/scopes.h"
#include "core/model/ids.h"
#include "core/model/schema.h"
#include "core/oidc/flow.h"
#include "core/tenancy/fallback.h"
#include "core/tenancy/sync.h"

namespace ks::tenancy {
namespace {

const model::Schema kCreateSchema = {
    {"id", model::Type::String, true, 63},
    {"friendly_name", model::Type::String, false, 255},
    {"custom_domains", model::Type::StringArray, false, 20},
    {"signing_alg", model::Type::String},
    {"settings", model::Type::Object},
    {"isolation", model::Type::String},
};
const model::Schema kUpdateSchema = {
    {"friendly_name", model::Type::String, false, 255},
    {"custom_domains", model::Type::StringArray, false, 20},
    {"signing_alg", model::Type::String},
    {"settings", model::Type::Object},
};

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool valid_hostname(const std::string& h) {
  if (h.empty() || h.size() > 253 || h.front() == '.' || h.back() == '.') return false;
  for (char c : h)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) return false;
  return h.find("..") == std::string::npos;
}

void check_signing_alg(const Json& body) {
  if (body.contains("signing_alg") &&
      !crypto::alg_from_name(body["signing_alg"].get<std::string>()))
    model::invalid_body("signing_alg must be RS256 or ES256");
}

// One lifecycle operation on a tenant (provision, suspend, resume, delete, move): the steps it
// went through, in order, and its outcome, written to the control plane's log as one entry —
// `sapi` when it succeeded, `fapi` with the step that failed and the error otherwise — after the
// operation's own transaction committed or rolled back.
class Operation {
 public:
  Operation(EngineImpl& e, std::string_view tenant, std::string_view name)
      : e_(e), tenant_(tenant), name_(name) {}
  void step(std::string_view s) { steps_.emplace_back(s); }
  void succeeded() { record(""); }
  void failed(std::string_view error) { record(error.empty() ? "failed" : error); }

  // Runs fn; on an exception records the failure (after `undo`) and rethrows.
  template <typename Fn, typename Undo>
  void run(Fn&& fn, Undo&& undo) {
    try {
      fn();
    } catch (const http::HttpError& err) {
      undo();
      failed(err.message);
      throw;
    } catch (const std::exception& err) {
      undo();
      failed(err.what());
      throw;
    }
    succeeded();
  }

 private:
  void record(std::string_view error) {
    Json details = {{"tenant_id", tenant_},
                    {"operation", name_},
                    {"steps", steps_},
                    {"succeeded", error.empty()}};
    std::string description = "Tenant " + name_ + (error.empty() ? " succeeded" : " failed");
    if (!error.empty()) {
      details["failed_step"] = steps_.empty() ? "" : steps_.back();
      details["error"] = std::string(error);
      description +=
          " at step " + details["failed_step"].get<std::string>() + ": " + std::string(error);
    }
    try {
      oidc::log_event(e_, e_.cfg().control_plane_id, error.empty() ? "sapi" : "fapi",
                      {{"description", description}, {"details", details}});
    } catch (const std::exception&) {
      // The log is a record of the operation, not part of it: the outcome stands.
    }
  }

  EngineImpl& e_;
  std::string tenant_;
  std::string name_;
  std::vector<std::string> steps_;
};

}  // namespace

Json TenantService::view(const Json& record) { return mgmt::public_view(record); }

std::optional<Json> TenantService::get(std::string_view id) {
  std::optional<Json> out;
  e_.store().read(e_.cfg().control_plane_id, [&](store::Tx& tx) {
    if (auto r = tx.get(kTenantKind, id)) out = std::move(r->data);
  });
  return out;
}

void TenantService::check_domains(store::Tx& cp, const Json& domains, std::string_view tenant) {
  for (const auto& d : domains) {
    std::string host = lower(d.get<std::string>());
    if (!valid_hostname(host)) model::invalid_body("Invalid custom domain: " + host);
    if (auto owner = cp.get(kCustomDomainKind, host);
        owner && owner->data.value("tenant_id", "") != tenant)
      throw http::HttpError{409, "Custom domain " + host + " is already in use", "conflict"};
  }
}

void TenantService::provision_defaults(store::Tx& tx) {
  auto& rng = e_.rng();
  const std::string now = iso8601(e_.clock().now_ms());
  Json scopes = Json::array();
  for (const auto& s : mgmt::management_scopes())
    scopes.push_back({{"value", s}, {"description", s}});
  scopes.push_back({{"value", std::string(mgmt::kAdminOrganizations)},
                    {"description", "Act on every tenant (platform staff)"}});
  const std::string api_id = model::new_prefixed_id("api", rng);
  tx.insert("resource_server", api_id,
            {{"id", api_id},
             {"name", "Keystead Management API"},
             {"identifier", std::string(mgmt::kManagementAudience)},
             {"scopes", scopes},
             {"signing_alg", "RS256"},
             {"token_lifetime", 86400},
             {"allow_offline_access", false},
             {"skip_consent_for_verifiable_first_party_clients", false},
             // Users get management scopes only through roles (e.g. "Tenant Admin" in an
             // organization), never just by asking for them.
             {"enforce_policies", true},
             {"token_dialect", "access_token_authz"},
             {"is_system", true},
             {"created_at", now},
             {"updated_at", now}},
            mgmt::kManagementAudience);
  const std::string con_id = model::new_prefixed_id("con", rng);
  tx.insert("connection", con_id,
            {{"id", con_id},
             {"name", "Username-Password-Authentication"},
             {"strategy", "auth0"},
             {"display_name", "Username-Password-Authentication"},
             {"options", Json::object()},
             {"enabled_clients", Json::array()},
             {"realms", Json::array({"Username-Password-Authentication"})},
             {"is_domain_connection", false},
             {"metadata", Json::object()},
             {"created_at", now}},
            "Username-Password-Authentication");
  // A "Default App" for logins and an M2M client that manages the tenant.
  Json app = mgmt::build_client(e_, tx.tenant(),
                                {{"name", "Default App"}, {"app_type", "regular_web"}}, nullptr);
  tx.insert("client", app["client_id"].get<std::string>(), app);
  Json m2m = mgmt::build_client(
      e_, tx.tenant(), {{"name", "Management Client"}, {"app_type", "non_interactive"}}, nullptr);
  const std::string m2m_id = m2m["client_id"];
  tx.insert("client", m2m_id, m2m);
  const std::string grant_id = model::new_prefixed_id("cgr", rng);
  Json all_scopes = mgmt::management_scopes();
  tx.insert("client_grant", grant_id,
            {{"id", grant_id},
             {"client_id", m2m_id},
             {"audience", std::string(mgmt::kManagementAudience)},
             {"scope", all_scopes}},
            m2m_id + "\n" + std::string(mgmt::kManagementAudience));
}

Json TenantService::create(const Json& body, std::string_view creator) {
  kCreateSchema.check(body);
  check_signing_alg(body);
  const std::string id = body["id"].get<std::string>();
  const auto& cfg = e_.cfg();
  if (!model::valid_tenant_id(id))
    throw http::HttpError{400,
                          "Invalid tenant id '" + id + "': must match ^[a-z0-9][a-z0-9_-]{0,62}$",
                          "invalid_tenant_id"};
  if (std::find(cfg.reserved_ids.begin(), cfg.reserved_ids.end(), id) != cfg.reserved_ids.end())
    throw http::HttpError{400, "The tenant id '" + id + "' is reserved", "reserved_tenant_id"};
  const std::string isolation = body.value("isolation", cfg.default_isolation);
  const auto placement = store::parse_isolation(isolation);
  if (!placement) model::invalid_body("isolation must be \"shared\" or \"database\"");

  const std::string now = iso8601(e_.clock().now_ms());
  const std::string org_id = model::new_prefixed_id("org", e_.rng());
  const std::string friendly = body.value("friendly_name", id);
  Json rec = {{"id", id},
              {"friendly_name", friendly},
              {"status", "active"},
              {"isolation", isolation},
              {"custom_domains", body.value("custom_domains", Json::array())},
              {"signing_alg", body.value("signing_alg", "RS256")},
              {"settings", body.value("settings", Json::object())},
              {"organization_id", org_id},
              {"created_at", now},
              {"updated_at", now}};
  for (auto& d : rec["custom_domains"]) d = lower(d.get<std::string>());
  // Step one registers the tenant with the store (and creates its database file when isolated);
  // every other step is one control-plane transaction, so a failure anywhere leaves nothing
  // visible: the transaction rolls back and the registration is dropped.
  Operation op(e_, id, "provision");
  bool registered = false;
  op.run(
      [&] {
        op.step(*placement == store::Isolation::Database ? "database" : "registration");
        try {
          e_.store().create_tenant(id, *placement);
        } catch (const store::Conflict&) {
          throw http::HttpError{409, "A tenant with id '" + id + "' already exists", "conflict"};
        }
        registered = true;
        try {
          e_.store().write(cfg.control_plane_id, [&](store::Tx& cp) {
            op.step("tenant_record");
            if (cp.get(kTenantKind, id))
              throw http::HttpError{409, "A tenant with id '" + id + "' already exists",
                                    "conflict"};
            check_domains(cp, rec["custom_domains"], id);
            check_settings_constraints(cp, cfg.control_plane_id, id, rec["settings"]);
            cp.insert(kTenantKind, id, rec);
            for (const auto& d : rec["custom_domains"])
              cp.insert(kCustomDomainKind, d.get<std::string>(), {{"tenant_id", id}});
            op.step("organization");
            if (cp.find("organization", id))
              throw http::HttpError{409, "An organization named '" + id + "' already exists",
                                    "conflict"};
            cp.insert("organization", org_id,
                      {{"id", org_id},
                       {"name", id},
                       {"display_name", friendly},
                       {"metadata", {{"tenant_id", id}}},
                       {"created_at", now}},
                      id);
            if (!creator.empty()) {
              cp.link("org_member", org_id, creator);
              if (auto role = cp.find("role", "Tenant Admin"))
                cp.link("org_member_role", org_id + "\n" + std::string(creator), role->id);
            }
            op.step("synced_entities");
            e_.sync().copy_all_to(cp, cp.scope(id));
            op.step("defaults");  // management API, database connection, Default App, M2M client
            provision_defaults(cp.scope(id));
            op.step("active");
          });
        } catch (const store::Conflict&) {
          throw http::HttpError{409, "A tenant with id '" + id + "' already exists", "conflict"};
        }
      },
      [&] {
        if (registered) e_.store().drop_tenant(id);
      });
  return view(rec);
}

Json TenantService::update(std::string_view id, const Json& body) {
  kUpdateSchema.check(body, true);
  check_signing_alg(body);
  Json out;
  e_.store().write(e_.cfg().control_plane_id, [&](store::Tx& cp) {
    auto rec = cp.get(kTenantKind, id);
    if (!rec) throw http::HttpError{404, "The tenant does not exist", "inexistent_tenant"};
    Json data = rec->data;
    if (body.contains("custom_domains")) {
      Json domains = Json::array();
      for (const auto& d : body["custom_domains"]) domains.push_back(lower(d.get<std::string>()));
      check_domains(cp, domains, id);
      for (const auto& d : data.value("custom_domains", Json::array()))
        cp.remove(kCustomDomainKind, d.get<std::string>());
      for (const auto& d : domains)
        cp.insert(kCustomDomainKind, d.get<std::string>(), {{"tenant_id", std::string(id)}});
      data["custom_domains"] = domains;
    }
    if (body.contains("friendly_name")) data["friendly_name"] = body["friendly_name"];
    if (body.contains("signing_alg")) data["signing_alg"] = body["signing_alg"];
    if (body.contains("settings")) {
      check_settings_constraints(cp, e_.cfg().control_plane_id, id, body["settings"]);
      data["settings"].merge_patch(body["settings"]);
    }
    data["updated_at"] = iso8601(e_.clock().now_ms());
    cp.update(kTenantKind, id, data);
    // The control plane's per-type sync switches apply to every child at once, in this write.
    if (id == e_.cfg().control_plane_id && body.contains("settings") &&
        body["settings"].contains("sync"))
      e_.sync().resync_all(cp);
    out = view(data);
  });
  return out;
}

Json TenantService::set_status(std::string_view id, std::string_view status) {
  if (id == e_.cfg().control_plane_id)
    throw http::HttpError{403, "The control plane cannot be suspended", "operation_not_supported"};
  Json out;
  if (!get(id)) throw http::HttpError{404, "The tenant does not exist", "inexistent_tenant"};
  Operation op(e_, id, status == "suspended" ? "suspend" : "resume");
  op.run(
      [&] {
        e_.store().write(e_.cfg().control_plane_id, [&](store::Tx& cp) {
          auto rec = cp.get(kTenantKind, id);
          if (!rec) throw http::HttpError{404, "The tenant does not exist", "inexistent_tenant"};
          op.step("status");
          Json data = rec->data;
          data["status"] = std::string(status);
          data["updated_at"] = iso8601(e_.clock().now_ms());
          cp.update(kTenantKind, id, data);
          out = view(data);
        });
      },
      [] {});
  return out;
}

bool TenantService::remove(std::string_view id) {
  if (id == e_.cfg().control_plane_id)
    throw http::HttpError{403, "The control plane cannot be deleted", "operation_not_supported"};
  bool existed = false;
  Operation op(e_, id, "delete");
  op.run(
      [&] {
        e_.store().write(e_.cfg().control_plane_id, [&](store::Tx& cp) {
          auto rec = cp.get(kTenantKind, id);
          if (rec) {
            existed = true;
            op.step("tenant_record");
            for (const auto& d : rec->data.value("custom_domains", Json::array()))
              cp.remove(kCustomDomainKind, d.get<std::string>());
            op.step("organization");
            if (auto org = cp.find("organization", id);
                org && org->data["metadata"].value("tenant_id", "") == id)
              mgmt::purge_organization(cp, org->id);
            cp.remove(kTenantKind, id);
          }
          // Data of a tenant whose record is already gone is purged too: delete is idempotent
          // and finishes what an interrupted delete left.
          op.step("data");
          cp.scope(id).purge_tenant();
        });
        op.step(e_.store().isolation(id) == store::Isolation::Database ? "database"
                                                                       : "registration");
        e_.store().drop_tenant(id);
        op.step("keys");
        e_.keys().forget(id);
      },
      [] {});
  return existed;
}

std::optional<std::string> TenantService::tenant_of_domain(std::string_view host) {
  std::optional<std::string> out;
  e_.store().read(e_.cfg().control_plane_id, [&](store::Tx& cp) {
    if (auto r = cp.get(kCustomDomainKind, host)) out = r->data.value("tenant_id", "");
  });
  return out;
}

std::string TenantService::canonical_issuer(std::string_view id) {
  const auto& cfg = e_.cfg();
  const std::string pub = cfg.effective_public_url();
  if (id == cfg.control_plane_id) return pub + "/";
  if (auto t = state(id)) {
    auto domains = t->record.find("custom_domains");
    if (domains != t->record.end() && domains->is_array() && !domains->empty())
      return "https://" + (*domains)[0].get<std::string>() + "/";
  }
  if (!cfg.base_domain.empty()) return "https://" + std::string(id) + "." + cfg.base_domain + "/";
  return pub + "/t/" + std::string(id) + "/";
}

void TenantService::ensure_control_plane() {
  const std::string& cp_id = e_.cfg().control_plane_id;
  e_.store().write(cp_id, [&](store::Tx& cp) {
    const std::string now = iso8601(e_.clock().now_ms());
    if (!cp.get(kTenantKind, cp_id)) {
      cp.insert(kTenantKind, cp_id,
                {{"id", cp_id},
                 {"friendly_name", "Control Plane"},
                 {"status", "active"},
                 {"isolation", "shared"},
                 {"is_control_plane", true},
                 {"custom_domains", Json::array()},
                 {"signing_alg", "RS256"},
                 {"settings", {{"self_service_tenants", true}}},
                 {"created_at", now},
                 {"updated_at", now}});
      provision_defaults(cp);
    }
    if (!cp.find("role", "Tenant Admin")) {
      const std::string role_id = model::new_prefixed_id("rol", e_.rng());
      cp.insert("role", role_id,
                {{"id", role_id},
                 {"name", "Tenant Admin"},
                 {"description", "Manages one customer tenant through its organization"},
                 {"metadata", {{"sync", false}}},
                 {"is_system", false}},
                "Tenant Admin");
      for (const auto& s : mgmt::management_scopes()) {
        if (s == "create:tenants") continue;
        cp.link("role_permission", role_id, std::string(mgmt::kManagementAudience) + "\n" + s);
      }
    }
  });
}

Json TenantService::move(std::string_view id, std::string_view isolation) {
  const auto to = store::parse_isolation(isolation);
  if (!to) model::invalid_body("isolation must be \"shared\" or \"database\"");
  const std::string& cp_id = e_.cfg().control_plane_id;
  if (id == cp_id)
    throw http::HttpError{403,
                          "The control plane holds the tenant registry and always stays in the "
                          "shared database",
                          "operation_not_supported"};
  if (!get(id)) throw http::HttpError{404, "The tenant does not exist", "inexistent_tenant"};
  Json out;
  Operation op(e_, id, std::string("move to ") + std::string(store::to_string(*to)));
  op.run(
      [&] {
        op.step("data");
        e_.store().move_tenant(id, *to);
        // The record follows the data. Should the process die in between, moving again (a
        // no-op for the data) brings the record in line.
        op.step("tenant_record");
        e_.store().write(cp_id, [&](store::Tx& cp) {
          auto rec = cp.get(kTenantKind, id);
          if (!rec) throw http::HttpError{404, "The tenant does not exist", "inexistent_tenant"};
          Json data = rec->data;
          data["isolation"] = std::string(store::to_string(*to));
          data["updated_at"] = iso8601(e_.clock().now_ms());
          cp.update(kTenantKind, id, data);
          out = view(data);
        });
      },
      [] {});
  return out;
}

}  // namespace ks::tenancy
