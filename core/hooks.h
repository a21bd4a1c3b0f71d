#pragma once
// The hook seam (DESIGN.md "Hooks in Lua"): core decides which scripts run, when, on what event,
// and what their outcome does to a flow; a HookRunner (hooks/, Lua 5.4) runs them. core never
// sees Lua.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"

namespace ks::hooks {

enum class Trigger {
  kPostLogin,             // onExecutePostLogin(event, api): after authentication, before tokens
  kCredentialsExchange,   // onExecuteCredentialsExchange(event, api): client_credentials
  kPreUserRegistration,   // onExecutePreUserRegistration(event, api): may deny or set metadata
  kPostUserRegistration,  // onExecutePostUserRegistration(event, api): after the user exists
  kSyncFilter,            // shouldSync(kind, entity, targetTenant) -> boolean: control plane only
};
inline constexpr Trigger kTriggers[] = {Trigger::kPostLogin, Trigger::kCredentialsExchange,
                                        Trigger::kPreUserRegistration,
                                        Trigger::kPostUserRegistration, Trigger::kSyncFilter};

// "post-login", "credentials-exchange", "pre-user-registration", "post-user-registration",
// "sync-filter".
std::string_view trigger_name(Trigger t);
std::optional<Trigger> trigger_from_name(std::string_view name);
// The global function a script for `t` defines ("onExecutePostLogin", ..., "shouldSync").
std::string_view entry_point(Trigger t);

// One stored hook, as a runner needs it. Shared and immutable: a runner may keep compiled code
// for (tenant, id) for as long as `code` stays byte-for-byte the same.
struct Script {
  std::string tenant;  // the tenant that owns it (the control plane for an inherited hook)
  std::string id;      // hook id ("hk_…")
  std::string name;    // for messages and logs
  std::string code;    // Lua source
};
using Scripts = std::vector<std::shared_ptr<const Script>>;

// Per call (one script's run of its entry point).
struct Limits {
  uint64_t max_instructions = 1'000'000;  // Lua VM instructions
  size_t max_memory_bytes = 8u << 20;     // bytes a call may hold above the state's baseline
  int64_t timeout_ms = 1000;              // wall clock
};

// Claims a script may not set (setCustomClaim raises a Lua error naming the claim): the ones the
// issue names, plus the ID token's protocol claims a client checks (nonce, at_hash, auth_time,
// sid).
inline constexpr std::string_view kReservedClaims[] = {
    "iss",         "sub",   "aud",     "exp",       "nbf",      "iat",
    "jti",         "azp",   "scope",   "org_id",    "org_name", "tenant_id",
    "permissions", "nonce", "at_hash", "auth_time", "sid"};

// What running a trigger's scripts did. Scripts run in order; each sees the metadata changes of
// the ones before it (event.user.app_metadata / user_metadata updated in place); the first deny
// or error stops the rest.
struct Outcome {
  Json access_token_claims = Json::object();  // api.accessToken.setCustomClaim(name, value)
  Json id_token_claims = Json::object();      // api.idToken.setCustomClaim(name, value)
  // api.user.setAppMetadata(key, value) / setUserMetadata: key -> value, a JSON null for a nil
  // value (remove the key). Empty when no script called them.
  Json app_metadata = Json::object();
  Json user_metadata = Json::object();
  std::optional<std::string> denied;  // api.access.deny(reason): the reason
  // A script failed: "<hook name>: <message>" for a runtime error, a reserved claim, the
  // instruction budget, the memory cap or the wall-clock bound.
  std::optional<std::string> error;
  bool sync = true;               // sync-filter: every script returned true
  std::vector<std::string> logs;  // print(...) lines, at most 20 per run, each at most 1,000 bytes

  bool ok() const { return !denied && !error; }
};

class HookRunner {
 public:
  virtual ~HookRunner() = default;

  // Compiles `code` as Lua text (binary chunks are refused) without running anything. nullopt
  // when it compiles; otherwise Lua's message with the line, e.g.
  // `[string "hook"]:3: '=' expected near 'x'`.
  virtual std::optional<std::string> compile_error(std::string_view code) = 0;

  // Runs entry_point(trigger) of each script, in order. `event` becomes the script's `event`
  // table (JSON objects and arrays as Lua tables; null as nil). For kSyncFilter, event is
  // {"kind": ..., "entity": {...}, "targetTenant": {...}} and each script's
  // shouldSync(kind, entity, targetTenant) must return a boolean (anything else is an error).
  // A script that does not define the entry point is skipped. Thread-safe; never throws for
  // anything a script does.
  virtual Outcome run(Trigger trigger, const Scripts& scripts, const Json& event) = 0;
};

}  // namespace ks::hooks
