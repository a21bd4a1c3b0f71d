#include "core/engine.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "core/email/delivery.h"
#include "core/engine_impl.h"
#include "core/mgmt/scopes.h"
#include "core/model/ids.h"
#include "core/net/http_client.h"

namespace ks {
namespace {

void make_dirs(const std::string& dir) {
  std::string cur;
  std::stringstream ss(dir);
  std::string part;
  if (!dir.empty() && dir[0] == '/') cur = "/";
  while (std::getline(ss, part, '/')) {
    if (part.empty()) continue;
    cur += part + "/";
    if (mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST)
      throw std::runtime_error("cannot create directory " + cur + ": " + std::strerror(errno));
  }
}

}  // namespace

// ---- Ctx --------------------------------------------------------------------------------------

const std::string& Ctx::param(std::string_view name) const {
  for (const auto& [k, v] : params)
    if (k == name) return v;
  throw std::logic_error("route has no parameter " + std::string(name));
}

Json Ctx::json_body() const {
  if (req.body.empty()) return Json::object();
  Json j = Json::parse(req.body, nullptr, false);
  if (j.is_discarded())
    throw http::HttpError{400, "Invalid request payload JSON format", "invalid_body"};
  return j;
}

http::Params Ctx::form_body() const {
  auto ct = req.header("content-type");
  if (ct.starts_with("application/json")) {
    Json j = json_body();
    if (!j.is_object()) throw http::HttpError{400, "Body must be a JSON object", "invalid_body"};
    http::Params p;
    for (auto it = j.begin(); it != j.end(); ++it)
      p.add(it.key(), it->is_string() ? it->get<std::string>() : it->dump());
    return p;
  }
  return http::Params::parse(req.body);
}

// ---- EngineImpl -------------------------------------------------------------------------------

EngineImpl::EngineImpl(Config cfg, std::unique_ptr<store::Store> store,
                       std::shared_ptr<Clock> clock, std::shared_ptr<crypto::Random> rng)
    : cfg_(std::move(cfg)),
      store_(std::move(store)),
      clock_(std::move(clock)),
      rng_(std::move(rng)) {
  load_master_key();
  keys_ = std::make_unique<oidc::KeyRing>(*this);
  tenants_ = std::make_unique<tenancy::TenantService>(*this);
  sync_ = std::make_unique<tenancy::SyncService>(*this);
  resolver_ = std::make_unique<tenancy::TenantResolver>(
      cfg_, [this](std::string_view host) { return tenants_->tenant_of_domain(host); },
      [this](std::string_view id) { return tenants_->canonical_issuer(id); });
  register_oidc_routes(routes_);
  register_mgmt_routes(routes_);
}

EngineImpl::~EngineImpl() {
  if (mail_queue_) mail_queue_->stop();
}

void EngineImpl::start_mail(std::shared_ptr<email::Mailer> mailer) {
  if (!mail_queue_) mail_queue_ = std::make_unique<email::DeliveryQueue>(*this, std::move(mailer));
}

void EngineImpl::load_master_key() {
  std::string hex = cfg_.master_key;
  if (hex.empty()) {
    // Dev mode only (validate() refuses prod without a key): keep one in the data dir.
    make_dirs(cfg_.data_dir);
    const std::string path = cfg_.data_dir + "/master.key";
    std::ifstream in(path);
    if (in) {
      std::getline(in, hex);
    } else {
      hex = rng_->hex(64);
      std::ofstream out(path, std::ios::trunc);
      out << hex << "\n";
      out.close();
      chmod(path.c_str(), 0600);
      if (!out) throw std::runtime_error("cannot write " + path);
      std::cerr << "keystead: warning: generated a development master key in " << path
                << "; set KEYSTEAD_MASTER_KEY in production\n";
    }
  }
  auto raw = crypto::hex_decode(hex);
  if (!raw || raw->size() != 32)
    throw std::invalid_argument("master key must be 64 hex characters");
  master_key_ = *raw;
}

std::string EngineImpl::seal(std::string_view plaintext, std::string_view aad) {
  return crypto::base64_encode(crypto::aead_seal(master_key_, plaintext, *rng_, aad));
}

std::optional<std::string> EngineImpl::open(std::string_view sealed_b64,
                                            std::string_view aad) const {
  auto raw = crypto::base64_decode(sealed_b64);
  if (!raw) return std::nullopt;
  return crypto::aead_open(master_key_, *raw, aad);
}

http::Response EngineImpl::handle(const http::Request& req) {
  if (req.path == "/healthz") return http::Response::json(200, {{"status", "ok"}});
  auto res = resolver_->resolve(req);
  if (res.kind == tenancy::Resolution::Kind::kInvalid)
    return http::Response::error(400, res.error, "invalid_tenant_id");
  if (res.kind == tenancy::Resolution::Kind::kUnresolved)
    return http::Response::error(400, "No tenant could be resolved for this request",
                                 "tenant_unresolved");
  Ctx ctx{*this,
          req,
          std::move(res.tenant),
          std::move(res.issuer),
          std::move(res.local_path),
          {},
          http::Params::parse(req.query),
          {},
          nullptr};
  return dispatch(ctx);
}

http::Response EngineImpl::dispatch(Ctx& ctx) {
  try {
    ctx.state = tenants_->state(ctx.tenant);
    if (!ctx.state)
      return http::Response::error(404, "Tenant not found: " + ctx.tenant, "inexistent_tenant");
    const std::string status = ctx.state->status();
    if (status == "suspended")
      return http::Response::error(403, "Tenant is suspended", "tenant_suspended");
    if (status != "active")
      return http::Response::error(503, "Tenant is not available (" + status + ")",
                                   "tenant_unavailable");
    const Handler* h = nullptr;
    switch (routes_.match(ctx.req.method, ctx.path, &h, &ctx.params)) {
      case Routes::Match::kNotFound:
        return http::Response::error(404, "Not Found", "not_found");
      case Routes::Match::kMethodNotAllowed:
        return http::Response::error(405, "Method Not Allowed", "method_not_allowed");
      case Routes::Match::kFound:
        break;
    }
    return (*h)(ctx);
  } catch (const http::HttpError& e) {
    return http::Response::error(e.status, e.message, e.error_code);
  } catch (const store::Conflict& e) {
    return http::Response::error(409, "The resource already exists", "conflict");
  } catch (const store::StoreError& e) {
    // The database failed (I/O, full disk, busy beyond the timeout): the request changed nothing
    // and may be retried.
    std::cerr << "{\"level\":\"error\",\"msg\":\"store\",\"error\":" << Json(e.what()).dump()
              << ",\"path\":" << Json(ctx.req.path).dump() << "}\n";
    return http::Response::error(503, "The data store is unavailable; try again",
                                 "temporarily_unavailable");
  } catch (const Json::exception& e) {
    // A JSON member of an unexpected type that validation let through: still the client's.
    return http::Response::error(400, std::string("Invalid request: ") + e.what(), "invalid_body");
  } catch (const std::exception& e) {
    std::cerr << "{\"level\":\"error\",\"msg\":\"unhandled\",\"error\":" << Json(e.what()).dump()
              << ",\"path\":" << Json(ctx.req.path).dump() << "}\n";
    return http::Response::error(500, "Internal Server Error", "internal_error");
  }
}

http::Response EngineImpl::manage(std::string_view tenant, std::string_view method,
                                  std::string_view path, const Json& body, std::string_view query) {
  http::Request req;
  req.method = std::string(method);
  req.path = "/api/v2" + std::string(path);
  req.query = std::string(query);
  if (!body.is_null()) {
    req.body = body.dump();
    req.add_header("content-type", "application/json");
  }
  return as_system(tenant, req);
}

http::Response EngineImpl::token(std::string_view tenant, const http::Params& form) {
  http::Request req;
  req.method = "POST";
  req.path = "/oauth/token";
  req.body = form.encode();
  req.add_header("content-type", "application/x-www-form-urlencoded");
  return as_system(tenant, req);
}

http::Response EngineImpl::as_system(std::string_view tenant, const http::Request& req) {
  if (!model::valid_tenant_id(tenant))
    return http::Response::error(400, "Invalid tenant id: " + std::string(tenant),
                                 "invalid_tenant_id");
  Ctx ctx{*this,
          req,
          std::string(tenant),
          tenants_->canonical_issuer(tenant),
          req.path,
          {},
          http::Params::parse(req.query),
          {},
          nullptr};
  ctx.caller.system = true;
  return dispatch(ctx);
}

void EngineImpl::bootstrap() {
  tenants_->ensure_control_plane();
  const std::string& cp = cfg_.control_plane_id;
  if (!cfg_.bootstrap_client_id.empty()) {
    auto existing =
        manage(cp, "GET", "/clients/" + http::url_encode(cfg_.bootstrap_client_id), nullptr, {});
    if (existing.status == 404) {
      Json client = {{"client_id", cfg_.bootstrap_client_id},
                     {"client_secret", cfg_.bootstrap_client_secret},
                     {"name", "Bootstrap automation client"},
                     {"app_type", "non_interactive"},
                     {"grant_types", {"client_credentials"}}};
      auto r = manage(cp, "POST", "/clients", client, {});
      if (r.status != 201) throw std::runtime_error("cannot create bootstrap client: " + r.body);
      Json scopes = mgmt::management_scopes();
      scopes.push_back(std::string(mgmt::kAdminOrganizations));
      auto g = manage(cp, "POST", "/client-grants",
                      {{"client_id", cfg_.bootstrap_client_id},
                       {"audience", std::string(mgmt::kManagementAudience)},
                       {"scope", scopes}},
                      {});
      if (g.status != 201) throw std::runtime_error("cannot grant bootstrap client: " + g.body);
    }
    std::cerr << "keystead: warning: KEYSTEAD_BOOTSTRAP_CLIENT_SECRET is set; remove it from the "
                 "environment once automation has its own credentials\n";
  }
  if (!cfg_.bootstrap_admin_email.empty()) {
    auto found = manage(cp, "GET", "/users-by-email", nullptr,
                        "email=" + http::url_encode(cfg_.bootstrap_admin_email));
    if (found.status == 200 && Json::parse(found.body).empty()) {
      auto r = manage(cp, "POST", "/users",
                      {{"email", cfg_.bootstrap_admin_email},
                       {"password", cfg_.bootstrap_admin_password},
                       {"connection", "Username-Password-Authentication"},
                       {"email_verified", true},
                       {"app_metadata", {{"platform_admin", true}}}},
                      {});
      if (r.status != 201) throw std::runtime_error("cannot create bootstrap admin: " + r.body);
    }
    std::cerr << "keystead: warning: KEYSTEAD_BOOTSTRAP_ADMIN_PASSWORD is set; remove it once the "
                 "admin has signed in\n";
  }
}

// ---- Engine -----------------------------------------------------------------------------------

Engine::Engine(std::unique_ptr<EngineImpl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

std::unique_ptr<Engine> Engine::open(const Config& config, Deps deps) {
  config.validate();
  if (!store::parse_isolation(config.default_isolation))
    throw std::invalid_argument("KEYSTEAD_DEFAULT_ISOLATION must be 'shared' or 'database', got '" +
                                config.default_isolation + "'");
  if (!deps.store) {
    make_dirs(config.data_dir);
    store::SqliteOptions options;
    options.tenants_dir = config.data_dir + "/tenants";  // isolated tenants' databases
    deps.store = store::open_sqlite(config.database_path(), options);
  }
  if (!deps.clock) deps.clock = std::make_shared<SystemClock>();
  if (!deps.random) deps.random = crypto::system_random();
  auto impl = std::make_unique<EngineImpl>(config, std::move(deps.store), std::move(deps.clock),
                                           std::move(deps.random));
  impl->set_hook_runner(std::move(deps.hooks));
  impl->start_mail(deps.mailer ? std::move(deps.mailer)
                               : email::make_mailer(config.data_dir + "/outbox.jsonl"));
  if (deps.http_client)
    impl->set_http_client(std::move(deps.http_client));
  else
    impl->set_http_client(net::curl_http_client());
  impl->bootstrap();
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

http::Response Engine::handle(const http::Request& request) { return impl_->handle(request); }

std::optional<http::Response> Engine::handle_inline(const http::Request& request) {
  if (request.path == "/healthz") return impl_->handle(request);
  constexpr std::string_view kDocuments[] = {"/.well-known/openid-configuration",
                                             "/.well-known/jwks.json"};
  if (request.method != "GET" ||
      std::none_of(std::begin(kDocuments), std::end(kDocuments),
                   [&](std::string_view d) { return request.path.ends_with(d); }))
    return std::nullopt;
  tenancy::CachedOnly cached_only;
  try {
    return impl_->handle(request);
  } catch (const tenancy::NotCached&) {
    return std::nullopt;
  }
}

http::Response Engine::manage(std::string_view tenant, std::string_view method,
                              std::string_view path, const Json& body, std::string_view query) {
  return impl_->manage(tenant, method, path, body, query);
}

http::Response Engine::token(std::string_view tenant, const http::Params& form) {
  return impl_->token(tenant, form);
}

void Engine::shutdown() { impl_->mail_queue().stop(); }

const Config& Engine::config() const { return impl_->cfg(); }

}  // namespace ks
