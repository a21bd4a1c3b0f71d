#pragma once
// Shared machinery of the Management API handlers: access checks, pagination, views.
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/engine_impl.h"
#include "core/json.h"
#include "core/store/store.h"

namespace ks::mgmt {

// Authenticates the bearer token (unless the caller is the system) and checks management
// access to ctx.tenant (DESIGN.md rules a, b, c) and the route's scope. Throws HttpError
// 401/403.
void authorize(Ctx& ctx, std::string_view scope);
// Only verifies the bearer token and fills ctx.caller (routes with their own access rules).
void authenticate_caller(Ctx& ctx);

struct Page {
  size_t page = 0;
  size_t per_page = 50;
  bool include_totals = false;
  bool checkpoint = false;  // from/take
  int64_t from = 0;
  size_t take = 50;
  // `sort=<field>:1` (false) or `:-1` (true); nullopt when not asked. Records are kept in
  // creation order, so that one field is all a list can be sorted by.
  std::optional<bool> descending;
};
// Parses page/per_page/include_totals/from/take/sort; 400 on bad values. `sort_field` is the
// field that stands for creation order (users' `created_at`, logs' `date`); sorting by anything
// else is a 400, never silently ignored.
Page page_params(const Ctx& ctx, std::string_view sort_field = "created_at");
store::ListQuery to_query(const Page& p);

// Auth0 list shapes: a bare array; {start, limit, length, total, <key>} with include_totals;
// {<key>, next} with from/take.
http::Response list_response(const Page& p, std::string_view key, Json items, size_t total,
                             int64_t last_seq, bool more);
// Lists records of a kind with the standard paging, mapping each through view.
http::Response list_records(Ctx& ctx, std::string_view kind, std::string_view key,
                            const std::function<Json(const Json&)>& view,
                            const store::ListQuery& filter = {});

// The one clause of a search query `q` (Lucene syntax, like Auth0's search engine v3) the store
// can answer: `field:value` or `field:"value"` with `field` one of `fields` (exact match).
// nullopt when `q` is absent or blank; 400 invalid_query_string for anything else — several clauses,
// wildcards, ranges, other fields — so that a search is never silently widened to everything.
std::optional<std::pair<std::string, std::string>> search_clause(
    const Ctx& ctx, std::initializer_list<std::string_view> fields);

// `fields=a,b` with `include_fields=true` (the default) keeps only those members of an item;
// with `include_fields=false` drops them. The item unchanged without `fields`.
Json project_fields(const Ctx& ctx, Json item);

// The document without internal ("_"-prefixed) members.
Json public_view(const Json& data);

// The record or HttpError 404 with Auth0's message for that resource.
store::Record must_get(store::Tx& tx, std::string_view kind, std::string_view id);

[[noreturn]] void not_found(std::string_view kind);
[[noreturn]] void forbidden(std::string_view message, std::string_view code = "insufficient_scope");

// Removes an organization and every membership and member-role link of it.
void purge_organization(store::Tx& tx, std::string_view org_id);
// Removes a user and every link that names it.
void purge_user(store::Tx& tx, std::string_view user_id);

// "identifier\npermission" — how a permission is keyed in role/user permission links.
std::string permission_key(std::string_view resource_server_identifier,
                           std::string_view permission_name);

// Masks a secret for a *_hint member: never enough of it to matter.
std::string secret_hint(std::string_view secret);

std::string now_iso(Ctx& ctx);

// A new client record (defaults by app_type, secret sealed). *secret_out gets the plain secret.
Json build_client(EngineImpl& e, std::string_view tenant, const Json& body,
                  std::string* secret_out);

}  // namespace ks::mgmt

namespace ks::mgmt {

// Lists links of `rel` from `from` (or to `from` when reverse) with the standard paging; view
// maps a link to its JSON item or nullopt to drop it (a dangling link).
http::Response list_links(
    Ctx& ctx, std::string_view rel, std::string_view from, std::string_view key,
    const std::function<std::optional<Json>(store::Tx&, const store::Link&)>& view,
    bool reverse = false);

// Validates {"permissions":[{resource_server_identifier, permission_name}]} against the
// tenant's resource servers; returns the permission keys. 400 on anything unknown.
std::vector<std::string> permission_keys(store::Tx& tx, const Json& body);
// JSON for one permission key, with the resource server's name and the scope's description.
Json permission_view(store::Tx& tx, std::string_view key);

// Validates a body member that must be a non-empty array of strings ("roles", "users", ...).
std::vector<std::string> id_list(const Json& body, std::string_view member);

}  // namespace ks::mgmt
