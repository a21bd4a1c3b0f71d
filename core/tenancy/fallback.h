#pragma once
// Runtime fallback (DESIGN.md "Runtime fallback", "Settings inheritance with constraints"): what
// a child tenant's login and token flows inherit at read time from the control plane. Nothing is
// copied: the child's records stay as stored (the Management API shows only them), and secrets
// of the control plane are opened with the control plane's own associated data, never re-sealed.
//
// The merge rules are pure functions over JSON; the lookups below them take the control plane's
// side from the cached TenantState (tenancy/state.h) and the tenant's own from its transaction.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/store/store.h"
#include "core/tenancy/state.h"

namespace ks {
class EngineImpl;
}

namespace ks::tenancy {

// ---- merge rules (pure) -------------------------------------------------------------------------

// The client URL lists a child inherits from the control plane's fallback client.
inline constexpr std::string_view kInheritedUrlLists[] = {"callbacks", "web_origins",
                                                          "allowed_logout_urls", "allowed_origins"};

// Items of `first`, then those of `second` not seen yet (a non-array counts as empty).
Json union_lists(const Json& first, const Json& second);

// The child's client with each inherited URL list the union of the platform client's (first) and
// its own. Other members are the child's.
Json merge_client(const Json& child, const Json& platform);

// Key by key, recursively: a key the child has wins — even "" or null — except that two objects
// merge; a key only the platform has is taken from it. Arrays and scalars replace, never merge.
// A child value that is not an object replaces the platform's whole.
Json merge_options(const Json& child, const Json& platform);

// Where a sealed secret came from: the blob and the associated data it was sealed with.
struct SealedSecrets {
  std::string sealed;  // empty: none
  std::string aad;
};

// The associated data connection secrets are sealed with (core/mgmt/connections.cpp).
std::string connection_aad(std::string_view tenant, std::string_view connection_id);

// A child connection over the platform's first connection of the same strategy: the child's
// top-level keys win, missing ones come from the platform, `options` merge by merge_options.
// Secrets are not merged here: the result carries both sealed blobs, child first, as
// `_secret_layers` [{sealed, aad}], and open_connection_secrets merges them key by key.
Json merge_connection(const Json& child, const SealedSecrets& child_secrets, const Json& platform,
                      const SealedSecrets& platform_secrets);

// A platform connection used as a whole by a child that has none of its strategy. Its
// `enabled_clients` name control-plane clients, which mean nothing in the child: every client
// of the child may use it.
Json inherited_connection(const Json& platform, const SealedSecrets& platform_secrets);

// Database and passwordless connections (auth0, email, sms) keep their users in the tenant: a
// child without one does not get the control plane's. Other strategies log in upstream and may be
// used as a whole.
bool inheritable_as_a_whole(std::string_view strategy);

// Settings only the control plane has a use for; never inherited.
inline constexpr std::string_view kPlatformOnlySettings[] = {"constraints", "self_service_tenants"};

// A child's settings over the platform's (merge_options rules), without platform-only settings.
Json merge_settings(const Json& child, const Json& platform);

// ---- floors and ceilings ----------------------------------------------------------------------
//
// The platform's `settings.constraints` maps a constrained setting (a dotted path into settings)
// to {"min": …, "max": …}. Constrained settings:
//   password_min_length                   integer, a floor: a tenant-wide minimum password length
//   access_token_lifetime                 integer seconds, a ceiling: no access token lives longer
//   refresh_token_lifetime                integer seconds, a ceiling: no refresh token lives longer
//   brute_force_protection.max_attempts   integer, a ceiling: failed logins before a block

struct ConstrainedSetting {
  std::string_view path;  // dotted
  int64_t lowest;         // valid values
  int64_t highest;
  // The value the flows use when the setting is absent; nullopt: unbounded.
  std::optional<int64_t> when_absent;
};
const std::vector<ConstrainedSetting>& constrained_settings();

// The member at a dotted path, or nullptr (absent, or an intermediate is not an object).
const Json* setting_at(const Json& settings, std::string_view path);
// The integer at a dotted path; nullopt when absent or not an integer.
std::optional<int64_t> integer_setting(const Json& settings, std::string_view path);

// Throws http::HttpError 400 invalid_body unless `constraints` is an object of known settings,
// each {"min"?, "max"?} with integers in the setting's range and min <= max.
void validate_constraints(const Json& constraints);

// Throws http::HttpError 400 invalid_body for a constrained setting of the wrong type or out of
// range in `patch`, and 422 constraint-violation for one that weakens a floor or exceeds a
// ceiling of `constraints`. Null values (removals) pass.
void check_against_constraints(const Json& patch, const Json& constraints);

// The effective settings: each constrained setting (absent ones by when_absent) clamped into
// [min, max]. An absent unbounded setting under a ceiling becomes the ceiling.
Json clamp_settings(Json settings, const Json& constraints);

// Effective settings of a tenant from its own and the platform's stored settings: merged (for a
// child) and clamped by the platform's constraints, without platform-only settings.
Json effective_settings_of(const Json& own, const Json& platform, bool is_control_plane);

// ---- lookups ------------------------------------------------------------------------------------

// The validation of a settings write to `tenant` (create, PATCH /tenants/{id}, PATCH
// /tenants/settings), in the control plane's write transaction `cp`: only the control plane may
// set `constraints` (403), which must be well formed (400); values of constrained settings are
// checked by check_against_constraints against the control plane's constraints (after the write,
// when it is the control plane's own). Throws http::HttpError; changes nothing.
void check_settings_constraints(store::Tx& cp, std::string_view control_plane_id,
                                std::string_view tenant, const Json& settings_patch);

// The lookups below take the request's TenantState (tenancy/state.h: its effective settings are
// the one accessor for settings, and it holds what the control plane lends its children) and a
// Tx of that same tenant for the tenant's own records.

// A client of the tenant as flows see it (merge_client with the control plane's fallback
// client); nullopt if the tenant has no such client. On the control plane: as stored.
std::optional<Json> effective_client(const TenantState& state, store::Tx& tx,
                                     std::string_view client_id);

// The connection `name` as flows of the tenant see it:
// - the tenant's own connection of that name, merged over the control plane's first (earliest
//   created) connection of its strategy;
// - else the control plane's connection of that name, when it is the first of its strategy, that
//   strategy is inheritable_as_a_whole and the tenant has no connection of that strategy.
// Every result carries `_secret_layers` for open_connection_secrets. On the control plane: its
// own connection as stored (plus `_secret_layers`).
std::optional<Json> effective_connection(const TenantState& state, store::Tx& tx,
                                         std::string_view name);

// Every connection the tenant can log in with, by the rules above, in creation order (own first,
// then inherited).
std::vector<Json> effective_connections(const TenantState& state, store::Tx& tx);

// The secret option values of a connection (from effective_connection, or a stored record of
// `tenant`), opened; a key of an earlier layer wins. A layer that cannot be opened adds nothing.
Json open_connection_secrets(const EngineImpl& e, std::string_view tenant, const Json& connection);

}  // namespace ks::tenancy
