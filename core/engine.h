#pragma once
// The composition root. Engine::handle is the whole HTTP surface of Keystead: the server, the C
// ABI and the tests all drive the same code through it.
#include <memory>
#include <optional>
#include <string>

#include "core/clock.h"
#include "core/config.h"
#include "core/crypto/crypto.h"
#include "core/hooks.h"
#include "core/http/form.h"
#include "core/http/http.h"
#include "core/store/store.h"

namespace ks {

class EngineImpl;
namespace net {
class HttpClient;
}
namespace email {
class Mailer;
}

class Engine {
 public:
  struct Deps {
    std::unique_ptr<store::Store> store;           // default: SQLite at config.database_path()
    std::shared_ptr<Clock> clock;                  // default: SystemClock
    std::shared_ptr<crypto::Random> random;        // default: crypto::system_random()
    std::shared_ptr<net::HttpClient> http_client;  // default: net::curl_http_client()
    std::shared_ptr<email::Mailer> mailer;         // default: email::make_mailer (SMTP, dev outbox)
    // Runs tenants' Lua hooks: hooks::make_lua_runner() (hooks/lua_runner.h). core cannot make
    // one itself (it never sees Lua); without it the hooks API answers 501 and no hook runs.
    std::shared_ptr<hooks::HookRunner> hooks;
  };

  // Opens the store, runs migrations and the first-start bootstrap (control plane, bootstrap
  // admin and client). Throws std::runtime_error / std::invalid_argument on bad configuration.
  static std::unique_ptr<Engine> open(const Config& config, Deps deps = {});
  ~Engine();

  // Thread-safe. May block (database, password hashing, RSA signing): call it off event loops.
  http::Response handle(const http::Request& request);

  // The response to `request` when it is cheap and non-blocking enough to give on an event loop:
  // a health check, or a discovery or JWKS document already in memory (one indexed read confirms
  // it is current). nullopt otherwise, having done nothing: call handle() off the loop.
  std::optional<http::Response> handle_inline(const http::Request& request);

  // Runs a Management API v2 call on `tenant` with system authority (no token), through the
  // same handlers and validation as HTTP. `path` is below /api/v2, e.g. "/tenants" or
  // "/clients/abc". Used by the CLI and the C ABI.
  http::Response manage(std::string_view tenant, std::string_view method, std::string_view path,
                        const Json& body = nullptr, std::string_view query = {});

  // Runs `tenant`'s token endpoint with system authority: the grants of POST /oauth/token, and
  // also oidc::kHostUserGrant, "urn:keystead:grant-type:user" (the host has authenticated a user
  // itself and asks for that user's tokens), which HTTP refuses. `form` holds the token request's
  // parameters. Used by the C ABI.
  http::Response token(std::string_view tenant, const http::Params& form);

  // Releases caches and stops background work; handle() must not be running.
  void shutdown();

  const Config& config() const;
  EngineImpl& impl() { return *impl_; }

 private:
  explicit Engine(std::unique_ptr<EngineImpl> impl);
  std::unique_ptr<EngineImpl> impl_;
};

}  // namespace ks
