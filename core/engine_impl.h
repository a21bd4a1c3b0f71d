#pragma once
// Internals shared by the engine's modules (oidc, mgmt, tenancy). Not a public header.
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/config.h"
#include "core/crypto/crypto.h"
#include "core/hooks.h"
#include "core/http/form.h"
#include "core/http/http.h"
#include "core/http/router.h"
#include "core/net/cache.h"
#include "core/net/http_client.h"
#include "core/oidc/keyring.h"
#include "core/oidc/verify.h"
#include "core/store/store.h"
#include "core/tenancy/resolver.h"
#include "core/tenancy/sync.h"
#include "core/tenancy/tenants.h"

namespace ks {

class EngineImpl;
namespace email {
class Mailer;
class DeliveryQueue;
}  // namespace email

// Who is calling the Management API, established from the bearer token (or the system, for the
// CLI and the C ABI).
struct Caller {
  bool system = false;
  std::string issuing_tenant;
  std::string sub;
  std::string azp;
  std::set<std::string> scopes;
  std::string org_id;
  std::string org_name;
};

struct Ctx {
  EngineImpl& e;
  const http::Request& req;
  std::string tenant;  // resolved tenant id
  std::string issuer;  // base URL with trailing '/'
  std::string path;    // path below the tenant base
  http::PathParams params;
  http::Params query;
  Caller caller;
  // The tenant's state, read once by dispatch before any handler runs.
  std::shared_ptr<const tenancy::TenantState> state;

  const std::string& param(std::string_view name) const;
  // Parses the JSON body; 400 invalid_body on malformed JSON or invalid UTF-8.
  Json json_body() const;
  // Parses an urlencoded (or JSON) form body.
  http::Params form_body() const;
};

using Handler = std::function<http::Response(Ctx&)>;
using Routes = http::Router<Handler>;

class EngineImpl {
 public:
  EngineImpl(Config cfg, std::unique_ptr<store::Store> store, std::shared_ptr<Clock> clock,
             std::shared_ptr<crypto::Random> rng);

  ~EngineImpl();

  http::Response handle(const http::Request& req);
  http::Response manage(std::string_view tenant, std::string_view method, std::string_view path,
                        const Json& body, std::string_view query);
  http::Response token(std::string_view tenant, const http::Params& form);
  void bootstrap();

  const Config& cfg() const { return cfg_; }
  store::Store& store() { return *store_; }
  const Clock& clock() const { return *clock_; }
  crypto::Random& rng() { return *rng_; }
  oidc::KeyRing& keys() { return *keys_; }
  oidc::VerifiedTokens& verified_tokens() { return verified_tokens_; }
  tenancy::TenantService& tenants() { return *tenants_; }
  tenancy::SyncService& sync() { return *sync_; }
  const tenancy::TenantResolver& resolver() const { return *resolver_; }
  // Outgoing email (core/email): starts the delivery thread; Engine::open calls it once.
  void start_mail(std::shared_ptr<email::Mailer> mailer);
  email::DeliveryQueue& mail_queue() { return *mail_queue_; }

  // Outbound HTTP (federated logins) and its cache of upstream documents (discovery, JWKS).
  // Engine::open sets the client once, before any request.
  void set_http_client(std::shared_ptr<net::HttpClient> c) { http_ = std::move(c); }
  net::HttpClient& http() { return *http_; }
  net::JsonCache& http_cache() { return http_cache_; }

  // The hook runtime (hooks/, Lua); nullptr when the host gave none (hooks can then be neither
  // stored nor run). Engine::open sets it once, before any request.
  void set_hook_runner(std::shared_ptr<hooks::HookRunner> r) { hook_runner_ = std::move(r); }
  hooks::HookRunner* hook_runner() const { return hook_runner_.get(); }

  // Secrets at rest: AES-256-GCM under the master key, base64 text.
  std::string seal(std::string_view plaintext, std::string_view aad);
  std::optional<std::string> open(std::string_view sealed_b64, std::string_view aad) const;

 private:
  http::Response dispatch(Ctx& ctx);
  // Dispatches `req` to `tenant` as the system (Caller::system): manage() and token().
  http::Response as_system(std::string_view tenant, const http::Request& req);
  void load_master_key();

  Config cfg_;
  std::unique_ptr<store::Store> store_;
  std::shared_ptr<Clock> clock_;
  std::shared_ptr<crypto::Random> rng_;
  std::string master_key_;  // 32 raw bytes
  std::unique_ptr<oidc::KeyRing> keys_;
  oidc::VerifiedTokens verified_tokens_;
  std::unique_ptr<tenancy::TenantService> tenants_;
  std::unique_ptr<tenancy::SyncService> sync_;
  std::unique_ptr<tenancy::TenantResolver> resolver_;
  Routes routes_;
  std::shared_ptr<net::HttpClient> http_;
  net::JsonCache http_cache_;
  std::shared_ptr<hooks::HookRunner> hook_runner_;
  std::unique_ptr<email::DeliveryQueue> mail_queue_;  // last: stopped before the rest goes
};

// Route registration, one function per module.
void register_oidc_routes(Routes& r);
void register_mgmt_routes(Routes& r);

}  // namespace ks
