// POST /oauth/token. Grants of the foundation: client_credentials. (authorization_code,
// refresh_token and password join in the identity work.)
#include <sstream>

#include "core/crypto/crypto.h"
#include "core/engine_impl.h"
#include "core/mgmt/common.h"
#include "core/oidc/oidc.h"

namespace ks::oidc {

std::string sign_token(EngineImpl& e, std::string_view tenant, const Json& claims,
                       std::string_view typ) {
  auto key = e.keys().signing_key(tenant);
  return crypto::jws_sign(*key.key, key.kid, claims, e.rng(), {{"typ", std::string(typ)}});
}

std::optional<std::string> client_secret(EngineImpl& e, std::string_view tenant,
                                         const Json& client) {
  if (!client.contains("_secret")) return std::nullopt;
  return e.open(client["_secret"].get<std::string>(),
                std::string(tenant) + "\n" + client.value("client_id", ""));
}

ClientAuth authenticate_client(Ctx& ctx, const http::Params& form) {
  std::string id, secret, method;
  std::string_view authz = ctx.req.header("authorization");
  if (authz.size() > 6 && (authz.starts_with("Basic ") || authz.starts_with("basic "))) {
    auto decoded = crypto::base64_decode(authz.substr(6));
    if (!decoded) throw OAuthError{401, "invalid_client", "Malformed Basic authorization header"};
    auto colon = decoded->find(':');
    if (colon == std::string::npos)
      throw OAuthError{401, "invalid_client", "Malformed Basic authorization header"};
    auto did = http::url_decode(std::string_view(*decoded).substr(0, colon));
    auto dsec = http::url_decode(std::string_view(*decoded).substr(colon + 1));
    if (!did || !dsec) throw OAuthError{401, "invalid_client", "Malformed Basic credentials"};
    id = *did;
    secret = *dsec;
    method = "client_secret_basic";
    if (form.has("client_secret"))
      throw OAuthError{400, "invalid_request", "Use only one client authentication method"};
    if (auto fid = form.get("client_id"); fid && *fid != id)
      throw OAuthError{400, "invalid_request", "client_id does not match the credentials"};
  } else {
    id = form.get_or("client_id", "");
    if (auto s = form.get("client_secret")) {
      secret = *s;
      method = "client_secret_post";
    } else {
      method = "none";
    }
  }
  if (id.empty()) throw OAuthError{401, "invalid_client", "Client authentication is required"};
  std::optional<Json> client;
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
    if (auto r = tx.get("client", id)) client = std::move(r->data);
  });
  if (!client) throw OAuthError{401, "invalid_client", "Unknown client or invalid credentials"};
  if (method != "none") {
    auto stored = client_secret(ctx.e, ctx.tenant, *client);
    if (!stored || !crypto::constant_time_equal(*stored, secret))
      throw OAuthError{401, "invalid_client", "Unknown client or invalid credentials"};
  }
  return {std::move(*client), method};
}

namespace {

std::vector<std::string> split_scope(std::string_view s) {
  std::vector<std::string> out;
  std::istringstream in{std::string(s)};
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

bool allows_grant(const Json& client, std::string_view grant) {
  for (const auto& g : client.value("grant_types", Json::array()))
    if (g.is_string() && g.get<std::string>() == grant) return true;
  return false;
}

http::Response client_credentials(Ctx& ctx, const http::Params& form) {
  auto auth = authenticate_client(ctx, form);
  if (auth.method == "none")
    throw OAuthError{401, "invalid_client", "client_credentials requires client authentication"};
  const Json& client = auth.client;
  const std::string client_id = client.value("client_id", "");
  if (!allows_grant(client, "client_credentials"))
    throw OAuthError{403, "unauthorized_client",
                     "Grant type 'client_credentials' not allowed for the client."};

  std::string audience = form.get_or("audience", "");
  if (audience.empty()) {
    if (auto t = ctx.e.tenants().get(ctx.tenant))
      audience = (*t)["settings"].value("default_audience", "");
  }
  if (audience.empty())
    throw OAuthError{400, "invalid_request",
                     "No audience parameter was provided, and no default audience has been "
                     "configured"};

  std::optional<Json> api, grant;
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
    if (auto r = tx.find("resource_server", audience)) api = std::move(r->data);
    if (auto g = tx.find("client_grant", client_id + "\n" + audience)) grant = std::move(g->data);
  });
  if (!api) throw OAuthError{403, "access_denied", "Service not found: " + audience};
  if (!grant)
    throw OAuthError{403, "access_denied",
                     "Client is not authorized to access \"" + audience +
                         "\". You need to create a \"client-grant\" associated to this API."};

  std::vector<std::string> granted;
  for (const auto& s : grant->value("scope", Json::array()))
    granted.push_back(s.get<std::string>());
  std::vector<std::string> scopes;
  if (auto requested = form.get("scope"); requested && !requested->empty()) {
    for (const auto& s : split_scope(*requested))
      if (std::find(granted.begin(), granted.end(), s) != granted.end()) scopes.push_back(s);
  } else {
    scopes = granted;
  }
  std::string scope;
  for (const auto& s : scopes) scope += (scope.empty() ? "" : " ") + s;

  const int64_t now = ctx.e.clock().now();
  const int64_t lifetime = api->value("token_lifetime", ctx.e.cfg().access_token_lifetime);
  Json claims = {{"iss", ctx.issuer},
                 {"sub", client_id + "@clients"},
                 {"aud", audience},
                 {"azp", client_id},
                 {"scope", scope},
                 {"iat", now},
                 {"exp", now + lifetime},
                 {"jti", ctx.e.rng().token(16)},
                 {"gty", "client-credentials"},
                 {"tenant_id", ctx.tenant}};
  Json body = {{"access_token", sign_token(ctx.e, ctx.tenant, claims, "at+jwt")},
               {"token_type", "Bearer"},
               {"expires_in", lifetime}};
  if (!scope.empty()) body["scope"] = scope;
  auto r = http::Response::json(200, body);
  r.set_header("cache-control", "no-store");
  r.set_header("pragma", "no-cache");
  return r;
}

}  // namespace
}  // namespace ks::oidc

namespace ks {

void register_token_routes(Routes& r) {
  r.add("POST", "/oauth/token", [](Ctx& ctx) -> http::Response {
    try {
      auto ct = ctx.req.header("content-type");
      if (!ct.starts_with("application/x-www-form-urlencoded") &&
          !ct.starts_with("application/json"))
        throw oidc::OAuthError{400, "invalid_request",
                               "Content-Type must be application/x-www-form-urlencoded or "
                               "application/json"};
      http::Params form;
      try {
        form = ctx.form_body();
      } catch (const http::HttpError& e) {
        throw oidc::OAuthError{400, "invalid_request", e.message};
      }
      const std::string grant = form.get_or("grant_type", "");
      if (grant.empty()) throw oidc::OAuthError{400, "invalid_request", "Missing grant_type"};
      if (grant == "client_credentials") return oidc::client_credentials(ctx, form);
      throw oidc::OAuthError{400, "unsupported_grant_type", "Unsupported grant type: " + grant};
    } catch (const oidc::OAuthError& e) {
      return http::Response::oauth_error(e.status, e.error, e.description);
    }
  });
}

}  // namespace ks
