// The C ABI shim: catches everything, maps it to codes and a thread-local message.
#include "capi/keystead.h"

#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>

#include "core/engine.h"
#include "core/engine_impl.h"
#include "core/http/form.h"
#include "core/oidc/flow.h"
#include "core/oidc/verify.h"
#include "hooks/lua_runner.h"

struct ks_engine {
  std::unique_ptr<ks::Engine> engine;
};

namespace {

thread_local std::string g_last_error;

int fail(int code, std::string message) {
  g_last_error = std::move(message);
  return code;
}

// The KS_E* code for an HTTP error status.
int status_code(int status) {
  switch (status) {
    case 400:
      return KS_EINVALID;
    case 401:
      return KS_EAUTH;
    case 403:
      return KS_EFORBIDDEN;
    case 404:
      return KS_ENOTFOUND;
    case 409:
      return KS_EEXISTS;
    default:
      return KS_ERROR;
  }
}

char* dup_string(const std::string& s) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (p) std::memcpy(p, s.c_str(), s.size() + 1);
  return p;
}

// Hands `text` to the caller as *out: KS_OK, or KS_ERROR when it cannot be allocated.
int give(char** out, const std::string& text) {
  *out = dup_string(text);
  if (!*out) return fail(KS_ERROR, "out of memory");
  g_last_error.clear();
  return KS_OK;
}

// A response of the engine: its body to the caller when the status is `ok_status` (or any 2xx
// for 0); otherwise the code for the status, with the body (the error) in ks_last_error().
int give_response(char** out, const ks::http::Response& res, int ok_status = 0) {
  const bool ok = ok_status ? res.status == ok_status : res.status >= 200 && res.status < 300;
  return ok ? give(out, res.body) : fail(status_code(res.status), res.body);
}

// Runs the body of an ABI function: no exception crosses the boundary.
template <typename F>
int guarded(F&& body) {
  try {
    return body();
  } catch (const std::invalid_argument& e) {
    return fail(KS_EINVALID, e.what());
  } catch (const std::exception& e) {
    return fail(KS_ERROR, e.what());
  } catch (...) {
    return fail(KS_ERROR, "unknown error");
  }
}

}  // namespace

extern "C" {

const char* ks_version(void) { return "0.1.0"; }

int ks_abi_version(void) { return KS_ABI_VERSION; }

const char* ks_last_error(void) { return g_last_error.c_str(); }

void ks_free(void* p) { std::free(p); }

int ks_engine_open(ks_engine** out, const char* config_json) {
  if (!out) return fail(KS_EINVALID, "out must not be NULL");
  *out = nullptr;
  return guarded([&] {
    ks::Config cfg = ks::Config::from_env();
    if (config_json && *config_json) {
      ks::Json j = ks::Json::parse(config_json, nullptr, false);
      if (j.is_discarded()) return fail(KS_EINVALID, "config_json is not valid JSON");
      cfg.apply_json(j);
    }
    ks::Engine::Deps deps;
    deps.hooks = ks::hooks::make_lua_runner(cfg.hook_limits);
    auto engine = ks::Engine::open(cfg, std::move(deps));
    *out = new ks_engine{std::move(engine)};
    g_last_error.clear();
    return KS_OK;
  });
}

void ks_engine_close(ks_engine* engine) {
  if (!engine) return;
  try {
    engine->engine->shutdown();
  } catch (...) {
  }
  delete engine;
}

int ks_engine_handle(char** out_response_json, ks_engine* engine, const char* request_json) {
  if (!out_response_json) return fail(KS_EINVALID, "out_response_json must not be NULL");
  *out_response_json = nullptr;
  if (!engine || !request_json) return fail(KS_EINVALID, "engine and request_json are required");
  return guarded([&] {
    ks::Json j = ks::Json::parse(request_json, nullptr, false);
    if (j.is_discarded() || !j.is_object())
      return fail(KS_EINVALID, "request_json must be a JSON object");
    ks::http::Request req;
    req.method = j.value("method", "GET");
    std::string path = j.value("path", "/");
    req.set_target(path);
    if (j.contains("query") && j["query"].is_string()) req.query = j["query"].get<std::string>();
    if (j.contains("headers")) {
      const auto& h = j["headers"];
      if (h.is_object()) {
        for (auto it = h.begin(); it != h.end(); ++it)
          if (it->is_string()) req.add_header(it.key(), it->get<std::string>());
      } else if (h.is_array()) {
        for (const auto& pair : h)
          if (pair.is_array() && pair.size() == 2 && pair[0].is_string() && pair[1].is_string())
            req.add_header(pair[0].get<std::string>(), pair[1].get<std::string>());
      } else {
        return fail(KS_EINVALID, "headers must be an object or an array of pairs");
      }
    }
    req.body = j.value("body", "");
    req.remote_addr = j.value("remote_addr", "");
    req.secure = j.value("secure", false);
    ks::http::Response res = engine->engine->handle(req);
    ks::Json headers = ks::Json::array();
    for (const auto& h : res.headers) headers.push_back({h.name, h.value});
    ks::Json out = {{"status", res.status}, {"headers", headers}, {"body", res.body}};
    return give(out_response_json, out.dump(-1, ' ', false, ks::Json::error_handler_t::replace));
  });
}

int ks_engine_manage(char** out_json, ks_engine* engine, const char* tenant, const char* method,
                     const char* path, const char* body_json) {
  if (!out_json) return fail(KS_EINVALID, "out_json must not be NULL");
  *out_json = nullptr;
  if (!engine || !method || !path) return fail(KS_EINVALID, "engine, method and path are required");
  return guarded([&] {
    ks::Json body;  // null: no body
    if (body_json) {
      body = ks::Json::parse(body_json, nullptr, false);
      if (body.is_discarded()) return fail(KS_EINVALID, "body_json is not valid JSON");
    }
    std::string_view target(path);
    std::string_view query;
    if (auto q = target.find('?'); q != std::string_view::npos) {
      query = target.substr(q + 1);
      target = target.substr(0, q);
    }
    const std::string id =
        tenant && *tenant ? std::string(tenant) : engine->engine->config().control_plane_id;
    ks::http::Response res = engine->engine->manage(id, method, target, body, query);
    return give_response(out_json, res);
  });
}

int ks_token_issue(char** out_json, ks_engine* engine, const char* tenant,
                   const char* request_json) {
  if (!out_json) return fail(KS_EINVALID, "out_json must not be NULL");
  *out_json = nullptr;
  if (!engine || !request_json) return fail(KS_EINVALID, "engine and request_json are required");
  return guarded([&] {
    ks::Json params = ks::Json::parse(request_json, nullptr, false);
    if (params.is_discarded() || !params.is_object())
      return fail(KS_EINVALID, "request_json must be a JSON object");
    ks::http::Params form;
    for (const auto& [k, v] : params.items()) {
      if (!v.is_string())
        return fail(KS_EINVALID, "token request parameter " + k + " must be a string");
      form.add(k, v.get<std::string>());
    }
    const std::string id =
        tenant && *tenant ? std::string(tenant) : engine->engine->config().control_plane_id;
    ks::http::Response res = engine->engine->token(id, form);
    return give_response(out_json, res, 200);
  });
}

int ks_token_verify(char** out_claims_json, ks_engine* engine, const char* token,
                    const char* tenant, const char* audience) {
  if (!out_claims_json) return fail(KS_EINVALID, "out_claims_json must not be NULL");
  *out_claims_json = nullptr;
  if (!engine || !token) return fail(KS_EINVALID, "engine and token are required");
  return guarded([&] {
    ks::oidc::VerifyOptions opts;
    if (tenant) opts.tenant = tenant;
    std::string error;
    auto v = ks::oidc::verify_jwt(engine->engine->impl(), token, &error, opts);
    if (!v) return fail(KS_EAUTH, error);
    if (audience && *audience &&
        !ks::oidc::audience_has(v->claims.value("aud", ks::Json()), audience))
      return fail(KS_EAUTH, "Invalid token: audience mismatch");
    return give(out_claims_json,
                v->claims.dump(-1, ' ', false, ks::Json::error_handler_t::replace));
  });
}

int ks_password_check(char** out_user_id, ks_engine* engine, const char* tenant,
                      const char* connection, const char* email, const char* password) {
  if (out_user_id) *out_user_id = nullptr;
  if (!engine || !email || !password)
    return fail(KS_EINVALID, "engine, email and password are required");
  return guarded([&] {
    ks::EngineImpl& e = engine->engine->impl();
    const std::string id = tenant && *tenant ? std::string(tenant) : e.cfg().control_plane_id;
    const std::string con = connection && *connection ? std::string(connection)
                                                      : std::string(ks::oidc::kDatabaseConnection);
    std::optional<ks::store::Record> user;
    e.store().read(id, [&](ks::store::Tx& tx) { user = ks::oidc::find_db_user(tx, con, email); });
    if (!ks::oidc::user_password_matches(user, password))
      return fail(KS_EAUTH, "Wrong email or password.");
    if (user->data.value("blocked", false)) return fail(KS_EFORBIDDEN, "user is blocked");
    if (!out_user_id) {
      g_last_error.clear();
      return KS_OK;
    }
    return give(out_user_id, user->id);
  });
}

}  // extern "C"
