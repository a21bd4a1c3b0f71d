#pragma once
// Shared machinery of the login and token flows: grants, token issuance, sessions, users,
// claims, permissions and the auth-event log.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/engine_impl.h"
#include "core/json.h"
#include "core/store/store.h"

namespace ks::oidc {

inline constexpr int64_t kCodeLifetime = 60;                // seconds
inline constexpr int64_t kLoginTxLifetime = 30 * 60;        // a login page stays usable 30 min
inline constexpr int64_t kSessionLifetime = 7 * 24 * 3600;  // absolute session lifetime
inline constexpr std::string_view kDatabaseConnection = "Username-Password-Authentication";
// The grant of a host embedding Keystead, for a user it has authenticated itself (Engine::token,
// ks_token_issue). The HTTP token endpoint refuses it.
inline constexpr std::string_view kHostUserGrant = "urn:keystead:grant-type:user";

// What an authorization code or a refresh token stands for.
struct Grant {
  std::string user_id;
  std::string client_id;
  std::string scope;     // space-separated, as granted
  std::string audience;  // may be empty: tokens only for /userinfo
  std::string nonce;
  std::string org_id;
  std::string org_name;
  std::string session_id;
  int64_t auth_time = 0;
  // Custom claims the post-login hooks set (api.accessToken / api.idToken.setCustomClaim).
  Json access_claims = Json::object();
  Json id_claims = Json::object();

  Json to_json() const;
  static Grant from_json(const Json& j);
};

// Inserts a short-lived record (data has "expires_at", seconds) after removing up to a few of the
// oldest records of the same kind that have expired. Lifetimes per kind are (nearly) constant,
// so insertion order is expiry order: each insert clears more than it adds once records expire,
// and abandoned login transactions, codes, sessions, refresh tokens and tickets do not pile up.
void insert_expiring(store::Tx& tx, std::string_view kind, std::string_view id, const Json& data,
                     int64_t now);

// Stored tokens (codes, refresh tokens, sessions, login transactions) are keyed by
// base64url(SHA-256(token)), so a copy of the database holds no usable secret.
std::string token_id(std::string_view token);

std::vector<std::string> split_scope(std::string_view scope);
std::string join_scope(const std::vector<std::string>& scopes);
bool has_scope(std::string_view scope, std::string_view want);

// The tenant's default_audience from its effective settings; empty when none.
std::string default_audience(const Json& settings);
// `lifetime` cut to the effective setting (access_token_lifetime, refresh_token_lifetime) when the
// tenant, or the platform's ceiling, bounds it.
int64_t capped_lifetime(int64_t lifetime, const Json& settings, std::string_view setting);

// Issues access (and ID, and refresh when allowed) tokens for a user grant and returns the
// token-endpoint response body. family: the refresh-token family to continue (empty: a new one);
// mint_refresh false leaves the refresh token to the caller (non-rotating refresh).
// Throws OAuthError (from oidc.h) for an audience that does not exist.
Json issue_user_tokens(Ctx& ctx, const Json& client, const Grant& grant, std::string family = {},
                       bool mint_refresh = true);

// The organization with this id, or else this name; nullopt when there is none.
std::optional<Json> find_organization(store::Tx& tx, const std::string& id_or_name);

// ---- users -----------------------------------------------------------------------------------

std::optional<store::Record> find_db_user(store::Tx& tx, std::string_view connection,
                                          std::string_view email);
// Whether `password` is the user's (a database user's `_password`). An unknown user (nullopt) or
// one without a password costs the same argon2id work as a wrong password, so the time of the
// answer does not tell whether the account exists. CPU-heavy: never on an event loop.
bool user_password_matches(const std::optional<store::Record>& user, std::string_view password);
// OIDC claims of a user for the scopes granted (profile, email).
Json user_claims(const Json& user, std::string_view scope);
// Permissions (as "scope" names) the user holds on an API: direct, through global roles, and
// through roles in the organization when org_id is set.
std::vector<std::string> user_permissions(store::Tx& tx, std::string_view user_id,
                                          std::string_view audience, std::string_view org_id);
// nullopt if the password satisfies the connection's policy and the tenant's effective
// `password_min_length` setting (tenancy::effective_settings), else the message.
std::optional<std::string> password_policy_error(const Json& connection, const Json& settings,
                                                 std::string_view pw);

// Failed logins after which an account is blocked for an IP (brute-force protection), from the
// tenant's effective settings (brute_force_protection.max_attempts, default 10).
int64_t max_login_attempts(const Json& settings);

// ---- sessions --------------------------------------------------------------------------------

inline constexpr std::string_view kSessionCookie = "ks_session";

struct Session {
  std::string id;  // token_id(cookie value)
  Json data;       // {user_id, auth_time, expires_at, ...}
};
std::optional<Session> current_session(Ctx& ctx);
// Creates a session and returns the Set-Cookie header value.
std::string start_session(Ctx& ctx, std::string_view user_id, std::string& session_id);
std::string clear_session_cookie(const Ctx& ctx);
// Ends the request's session, if any, and returns it.
std::optional<Session> end_session(Ctx& ctx);

// ---- hooks -----------------------------------------------------------------------------------

// Runs the tenant's hooks for `trigger` (ctx.state->hooks_for: its own, then the control plane's
// inheritable ones) on `event`, adding event.tenant and event.request. nullopt, with nothing
// built or run, when the tenant has none. A denied or failed run is logged here as `log_type`
// with `log_fields`, the reason and the scripts' print lines.
std::optional<hooks::Outcome> run_hooks(Ctx& ctx, hooks::Trigger trigger, Json event,
                                        std::string_view log_type, Json log_fields);
// What a script sees of a user (no internal members) and of a client (no secrets).
Json hook_user(const Json& user);
Json hook_client(const Json& client);
// The user-facing message of a denied or failed run: the deny reason, or the failure.
std::string hook_message(const hooks::Outcome& out);
// Applies api.user.setAppMetadata / setUserMetadata changes to a user document (top-level keys;
// null removes). False when there were none.
bool apply_hook_metadata(Json& user, const hooks::Outcome& out);
// Sets hook claims on a token payload; reserved claims are never overwritten.
void add_hook_claims(Json& payload, const Json& claims);

// ---- log ------------------------------------------------------------------------------------

// Appends an auth event to the tenant's log (Auth0 log type codes: s, f, fp, fu, seccft, ...).
void log_event(Ctx& ctx, std::string_view type, Json fields);
void log_event(EngineImpl& e, std::string_view tenant, std::string_view type, Json fields);

// ---- HTML -----------------------------------------------------------------------------------

std::string html_escape(std::string_view s);
// A hosted page in the tenant's branding. body_html is trusted markup built with html_escape.
http::Response page(Ctx& ctx, int status, std::string_view title, std::string_view body_html);
http::Response error_page(Ctx& ctx, int status, std::string_view error,
                          std::string_view description);

}  // namespace ks::oidc
