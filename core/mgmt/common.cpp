#include "core/mgmt/common.h"

#include <algorithm>
#include <charconv>
#include <set>

#include "core/crypto/crypto.h"
#include "core/mgmt/scopes.h"
#include "core/model/schema.h"
#include "core/oidc/flow.h"
#include "core/oidc/verify.h"

namespace ks::mgmt {
namespace {

[[noreturn]] void unauthorized(std::string_view message) {
  throw http::HttpError{401, std::string(message), "invalid_token"};
}

std::set<std::string> scope_set(const Json& claims) {
  std::set<std::string> out;
  if (auto it = claims.find("scope"); it != claims.end() && it->is_string())
    for (auto& s : oidc::split_scope(it->get_ref<const std::string&>())) out.insert(std::move(s));
  if (auto it = claims.find("permissions"); it != claims.end() && it->is_array())
    for (const auto& p : *it)
      if (p.is_string()) out.insert(p.get<std::string>());
  return out;
}

// Verifies the bearer token and fills ctx.caller. Any failure is 401.
void authenticate(Ctx& ctx) {
  std::string_view authz = ctx.req.header("authorization");
  if (authz.empty()) unauthorized("Missing authentication");
  if (!(authz.starts_with("Bearer ") || authz.starts_with("bearer ")) || authz.size() <= 7)
    unauthorized("Bad HTTP authentication header format");
  std::string error;
  auto jwt = oidc::verify_jwt(ctx.e, authz.substr(7), &error);
  if (!jwt) unauthorized(error);
  const Json& c = jwt->claims;
  if (!c.contains("aud") || !oidc::audience_has(c["aud"], kManagementAudience))
    unauthorized("Invalid token: audience is not the management API");
  const std::string issuing = jwt->tenant;

  Caller& caller = ctx.caller;
  caller.issuing_tenant = issuing;
  caller.sub = c.value("sub", "");
  caller.azp = c.value("azp", "");
  caller.scopes = scope_set(c);
  caller.org_id = c.value("org_id", "");
  caller.org_name = c.value("org_name", "");
}

}  // namespace

void authenticate_caller(Ctx& ctx) {
  if (!ctx.caller.system && ctx.caller.issuing_tenant.empty()) authenticate(ctx);
}

void authorize(Ctx& ctx, std::string_view scope) {
  if (ctx.caller.system) return;
  authenticate_caller(ctx);
  const Caller& caller = ctx.caller;
  const std::string& cp = ctx.e.cfg().control_plane_id;
  bool allowed = false, staff = false;
  if (caller.issuing_tenant == cp && !caller.org_name.empty()) {
    allowed = caller.org_name == ctx.tenant;  // (b) an org token acts on its tenant only
  } else if (caller.issuing_tenant == ctx.tenant) {
    allowed = true;  // (a) issued by the tenant itself
  } else if (caller.issuing_tenant == cp) {
    allowed = staff = caller.scopes.count(std::string(kAdminOrganizations)) > 0;  // (c)
  }
  if (!allowed) forbidden("This token cannot act on tenant '" + ctx.tenant + "'", "access_denied");
  if (!scope.empty() && !caller.scopes.count(std::string(scope)))
    forbidden("Insufficient scope, expected any of: " + std::string(scope));
  if (staff) {
    // Every cross-tenant call by platform staff is in the target tenant's audit log.
    oidc::log_event(ctx, "sapi",
                    {{"description", "Management API call by platform staff"},
                     {"client_id", caller.azp},
                     {"user_id", caller.sub},
                     {"details",
                      {{"method", ctx.req.method},
                       {"path", ctx.req.path},
                       {"scope", std::string(scope)},
                       {"issuing_tenant", caller.issuing_tenant}}}});
  }
}

Page page_params(const Ctx& ctx, std::string_view sort_field) {
  auto num = [&](std::string_view name, size_t dflt, size_t max) -> size_t {
    auto v = ctx.query.get(name);
    if (!v) return dflt;
    size_t n = 0;
    auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (ec != std::errc() || p != v->data() + v->size())
      throw http::HttpError{
          400, "Query validation error: '" + std::string(name) + "' must be a non-negative integer",
          "invalid_query_string"};
    if (n > max)
      throw http::HttpError{400,
                            "Query validation error: '" + std::string(name) + "' must be at most " +
                                std::to_string(max),
                            "invalid_query_string"};
    return n;
  };
  Page p;
  p.page = num("page", 0, 1000000);
  p.per_page = num("per_page", 50, 100);
  p.include_totals = ctx.query.get_or("include_totals", "false") == "true";
  if (ctx.query.has("from") || ctx.query.has("take")) {
    p.checkpoint = true;
    p.take = num("take", 50, 100);
    auto from = ctx.query.get_or("from", "");
    if (!from.empty()) {
      auto [ptr, ec] = std::from_chars(from.data(), from.data() + from.size(), p.from);
      if (ec != std::errc() || ptr != from.data() + from.size() || p.from < 0)
        throw http::HttpError{400, "Query validation error: invalid 'from' checkpoint",
                              "invalid_query_string"};
    }
  }
  if (auto sort = ctx.query.get("sort")) {
    const std::string f(sort_field);
    if (*sort == f + ":1")
      p.descending = false;
    else if (*sort == f + ":-1")
      p.descending = true;
    else
      throw http::HttpError{400,
                            "Query validation error: 'sort' must be " + f + ":1 or " + f +
                                ":-1 (records are kept in creation order)",
                            "invalid_query_string"};
    if (p.checkpoint && *p.descending != (sort_field == "date"))
      throw http::HttpError{
          400, "Query validation error: 'sort' cannot change the order of from/take pagination",
          "invalid_query_string"};
  }
  return p;
}

store::ListQuery to_query(const Page& p) {
  store::ListQuery q;
  if (p.checkpoint) {
    q.after_seq = p.from;
    q.limit = p.take + 1;  // one more tells whether there is a next page
  } else {
    q.offset = p.page * p.per_page;
    q.limit = p.per_page;
  }
  q.newest_first = p.descending.value_or(false);
  return q;
}

http::Response list_response(const Page& p, std::string_view key, Json items, size_t total,
                             int64_t last_seq, bool more) {
  if (p.checkpoint) {
    Json body = {{std::string(key), std::move(items)}};
    if (more) body["next"] = std::to_string(last_seq);
    return http::Response::json(200, body);
  }
  if (!p.include_totals) return http::Response::json(200, items);
  const size_t length = items.size();
  return http::Response::json(200, {{"start", p.page * p.per_page},
                                    {"limit", p.per_page},
                                    {"length", length},
                                    {"total", total},
                                    {std::string(key), std::move(items)}});
}

http::Response list_records(Ctx& ctx, std::string_view kind, std::string_view key,
                            const std::function<Json(const Json&)>& view,
                            const store::ListQuery& filter) {
  Page p = page_params(ctx);
  store::ListQuery q = to_query(p);
  q.field = filter.field;
  q.value = filter.value;
  Json items = Json::array();
  size_t total = 0;
  int64_t last_seq = 0;
  bool more = false;
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
    auto recs = tx.list(kind, q);
    if (p.checkpoint && recs.size() > p.take) {
      more = true;
      recs.pop_back();
    }
    for (const auto& r : recs) {
      items.push_back(project_fields(ctx, view(r.data)));
      last_seq = r.seq;
    }
    if (p.include_totals && !p.checkpoint) {
      store::ListQuery cq;
      cq.field = filter.field;
      cq.value = filter.value;
      total = tx.count(kind, cq);
    }
  });
  return list_response(p, key, std::move(items), total, last_seq, more);
}

std::optional<std::pair<std::string, std::string>> search_clause(
    const Ctx& ctx, std::initializer_list<std::string_view> fields) {
  auto q = ctx.query.get("q");
  if (!q) return std::nullopt;
  if (auto engine = ctx.query.get("search_engine"); engine && *engine != "v3" && *engine != "v2")
    throw http::HttpError{400, "Query validation error: 'search_engine' must be v3",
                          "invalid_query_string"};
  std::string supported;
  for (auto f : fields) supported += (supported.empty() ? "" : ", ") + std::string(f);
  auto unsupported = [&]() -> http::HttpError {
    return {400,
            "Query validation error: unsupported search query; Keystead answers one exact "
            "field:value or field:\"value\" clause on " +
                supported,
            "invalid_query_string"};
  };
  std::string_view text(*q);
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  if (text.empty()) return std::nullopt;  // q= : no search, as with Auth0
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos) throw unsupported();
  const std::string_view field = text.substr(0, colon);
  std::string_view value = text.substr(colon + 1);
  if (std::find(fields.begin(), fields.end(), field) == fields.end()) throw unsupported();
  if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
    value = value.substr(1, value.size() - 2);
    if (value.find_first_of("\"\\") != std::string_view::npos) throw unsupported();
  } else if (value.find_first_of(" \t\"\\*?~^()[]{}:/") != std::string_view::npos ||
             (!value.empty() &&
              std::string_view("+-!&|").find(value.front()) != std::string_view::npos)) {
    throw unsupported();  // Lucene syntax beyond one term (AND/OR, wildcards, ranges, …)
  }
  if (value.empty()) throw unsupported();
  return std::make_pair(std::string(field), std::string(value));
}

Json project_fields(const Ctx& ctx, Json item) {
  auto fields = ctx.query.get("fields");
  if (!fields || !item.is_object()) return item;
  const std::string include = ctx.query.get_or("include_fields", "true");
  if (include != "true" && include != "false")
    throw http::HttpError{400, "Query validation error: 'include_fields' must be true or false",
                          "invalid_query_string"};
  std::set<std::string, std::less<>> names;
  std::string_view rest(*fields);
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    std::string_view name = rest.substr(0, comma);
    if (!name.empty()) names.emplace(name);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
  }
  Json out = Json::object();
  for (auto it = item.begin(); it != item.end(); ++it)
    if (names.contains(it.key()) == (include == "true")) out[it.key()] = std::move(it.value());
  return out;
}

Json public_view(const Json& data) {
  Json out = Json::object();
  for (auto it = data.begin(); it != data.end(); ++it)
    if (!it.key().starts_with("_")) out[it.key()] = it.value();
  return out;
}

[[noreturn]] void not_found(std::string_view kind) {
  static const std::map<std::string_view, std::pair<const char*, const char*>> kMessages = {
      {"user", {"The user does not exist.", "inexistent_user"}},
      {"client", {"The client does not exist", "inexistent_client"}},
      {"client_grant", {"The client grant does not exist", "inexistent_client_grant"}},
      {"connection", {"The connection does not exist", "inexistent_connection"}},
      {"resource_server", {"The resource server does not exist", "inexistent_resource_server"}},
      {"role", {"The role does not exist", "inexistent_role"}},
      {"organization", {"No organization found by that id or name", "inexistent_organization"}},
      {"tenant", {"The tenant does not exist", "inexistent_tenant"}},
      {"hook", {"The hook does not exist", "inexistent_hook"}},
  };
  auto it = kMessages.find(kind);
  if (it == kMessages.end()) throw http::HttpError{404, "Not Found", "not_found"};
  throw http::HttpError{404, it->second.first, it->second.second};
}

store::Record must_get(store::Tx& tx, std::string_view kind, std::string_view id) {
  auto r = tx.get(kind, id);
  if (!r) not_found(kind);
  return std::move(*r);
}

[[noreturn]] void forbidden(std::string_view message, std::string_view code) {
  throw http::HttpError{403, std::string(message), std::string(code)};
}

void purge_organization(store::Tx& tx, std::string_view org_id) {
  for (const auto& m : tx.links_from("org_member", org_id, store::ListQuery::first(1000000)))
    tx.unlink_from("org_member_role", std::string(org_id) + "\n" + m.to);
  tx.unlink_from("org_member", org_id);
  tx.remove("organization", org_id);
}

void purge_user(store::Tx& tx, std::string_view user_id) {
  for (const auto& m : tx.links_to("org_member", user_id, store::ListQuery::first(1000000)))
    tx.unlink_from("org_member_role", m.from + "\n" + std::string(user_id));
  tx.unlink_to("org_member", user_id);
  tx.unlink_from("user_role", user_id);
  tx.unlink_from("user_permission", user_id);
  tx.remove("user", user_id);
}

std::string permission_key(std::string_view identifier, std::string_view permission) {
  std::string k(identifier);
  k.push_back('\n');
  k.append(permission);
  return k;
}

std::string secret_hint(std::string_view secret) {
  if (secret.size() < 12) return "****";
  return "****" + std::string(secret.substr(secret.size() - 4));
}

std::string now_iso(Ctx& ctx) { return iso8601(ctx.e.clock().now_ms()); }

const std::vector<std::string>& management_scopes() {
  static const std::vector<std::string> kScopes = [] {
    std::vector<std::string> s;
    for (const char* noun :
         {"users", "clients", "client_grants", "connections", "resource_servers", "roles",
          "organizations", "tenants", "logs", "hooks", "signing_keys", "email_provider", "branding",
          "tenant_settings", "client_keys", "organization_members", "organization_member_roles",
          "role_members", "user_tickets"}) {
      for (const char* verb : {"read", "create", "update", "delete"})
        s.push_back(std::string(verb) + ":" + noun);
    }
    return s;
  }();
  return kScopes;
}

}  // namespace ks::mgmt

namespace ks::mgmt {

http::Response list_links(
    Ctx& ctx, std::string_view rel, std::string_view from, std::string_view key,
    const std::function<std::optional<Json>(store::Tx&, const store::Link&)>& view, bool reverse) {
  Page p = page_params(ctx);
  store::ListQuery q = to_query(p);
  Json items = Json::array();
  size_t total = 0;
  int64_t last_seq = 0;
  bool more = false;
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
    auto links = reverse ? tx.links_to(rel, from, q) : tx.links_from(rel, from, q);
    if (p.checkpoint && links.size() > p.take) {
      more = true;
      links.pop_back();
    }
    for (const auto& l : links) {
      if (auto item = view(tx, l)) items.push_back(std::move(*item));
      last_seq = l.seq;
    }
    if (p.include_totals)
      total = reverse ? tx.count_links_to(rel, from) : tx.count_links_from(rel, from);
  });
  return list_response(p, key, std::move(items), total, last_seq, more);
}

std::vector<std::string> permission_keys(store::Tx& tx, const Json& body) {
  if (!body.is_object() || !body.contains("permissions") || !body["permissions"].is_array() ||
      body["permissions"].empty())
    model::invalid_body("Payload validation error: 'Missing required property: permissions'.");
  // One request changes at most this many (on the control plane, each is written to every
  // child tenant in the same transaction).
  constexpr size_t kMaxPermissions = 1000;
  if (body["permissions"].size() > kMaxPermissions)
    model::invalid_body("Payload validation error: 'Array is too long (" +
                        std::to_string(body["permissions"].size()) + "), maximum " +
                        std::to_string(kMaxPermissions) + "' on property permissions.");
  std::vector<std::string> keys;
  for (const auto& p : body["permissions"]) {
    if (!p.is_object() || !p.contains("resource_server_identifier") ||
        !p["resource_server_identifier"].is_string() || !p.contains("permission_name") ||
        !p["permission_name"].is_string())
      model::invalid_body(
          "Payload validation error: each permission needs resource_server_identifier and "
          "permission_name strings.");
    const std::string rs_id = p["resource_server_identifier"].get<std::string>();
    const std::string name = p["permission_name"].get<std::string>();
    auto rs = tx.find("resource_server", rs_id);
    bool defined = false;
    if (rs)
      for (const auto& s : rs->data.value("scopes", Json::array()))
        if (s.value("value", "") == name) defined = true;
    if (!defined)
      throw http::HttpError{400,
                            "Permission " + name + " does not exist on resource server " + rs_id,
                            "invalid_body"};
    keys.push_back(permission_key(rs_id, name));
  }
  return keys;
}

Json permission_view(store::Tx& tx, std::string_view key) {
  auto nl = key.find('\n');
  std::string rs_id(key.substr(0, nl));
  std::string name(nl == std::string_view::npos ? "" : key.substr(nl + 1));
  Json j = {{"resource_server_identifier", rs_id}, {"permission_name", name}};
  if (auto rs = tx.find("resource_server", rs_id)) {
    j["resource_server_name"] = rs->data.value("name", "");
    for (const auto& s : rs->data.value("scopes", Json::array()))
      if (s.value("value", "") == name) j["description"] = s.value("description", "");
  }
  return j;
}

std::vector<std::string> id_list(const Json& body, std::string_view member) {
  const std::string m(member);
  if (!body.is_object() || !body.contains(m))
    model::invalid_body("Payload validation error: 'Missing required property: " + m + "'.");
  const Json& v = body[m];
  if (!v.is_array() || v.empty())
    model::invalid_body("Payload validation error: '" + m + "' must be a non-empty array.");
  std::vector<std::string> out;
  for (const auto& e : v) {
    if (!e.is_string() || e.get<std::string>().empty())
      model::invalid_body("Payload validation error: 'Expected type string' on property " + m +
                          ".");
    out.push_back(e.get<std::string>());
  }
  return out;
}

}  // namespace ks::mgmt
