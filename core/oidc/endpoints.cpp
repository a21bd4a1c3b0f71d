// /userinfo, /oauth/revoke, /oauth/introspect, /v2/logout, /oidc/logout, and CORS for the
// endpoints browsers call directly.
#include "core/crypto/crypto.h"
#include "core/http/form.h"
#include "core/oidc/flow.h"
#include "core/oidc/oidc.h"
#include "core/oidc/verify.h"
#include "core/tenancy/fallback.h"

namespace ks::oidc {
namespace {

bool contains(const Json& list, std::string_view v) {
  if (!list.is_array()) return false;
  for (const auto& x : list)
    if (x.is_string() && x.get<std::string>() == v) return true;
  return false;
}

bool lists_origin(const Json& client, std::string_view origin) {
  return contains(client.value("web_origins", Json::array()), origin) ||
         contains(client.value("allowed_origins", Json::array()), origin);
}

// The client a browser request speaks for: client_id of the form (or Basic credentials), else
// the azp of its bearer token. Empty when none is named.
std::string requesting_client(const Ctx& ctx) {
  std::string_view authz = ctx.req.header("authorization");
  if (authz.starts_with("Bearer ") || authz.starts_with("bearer ")) {
    if (auto jws = crypto::jws_parse(authz.substr(7))) return jws->payload.value("azp", "");
    return {};
  }
  if (authz.starts_with("Basic ") || authz.starts_with("basic ")) {
    auto decoded = crypto::base64_decode(authz.substr(6));
    if (decoded) return http::url_decode(decoded->substr(0, decoded->find(':'))).value_or("");
  }
  if (ctx.req.method == "POST") {
    try {
      return ctx.form_body().get_or("client_id", "");
    } catch (const http::HttpError&) {
      return {};
    }
  }
  return ctx.query.get_or("client_id", "");
}

// A request may be read by an origin that its client registered (web_origins or
// allowed_origins; on a child tenant, with the control plane's fallback client's). A preflight
// names no client: any of the tenant's clients may vouch for the origin there, and the actual
// request is then checked against its own client.
bool origin_allowed(Ctx& ctx, std::string_view origin, std::string_view client_id) {
  if (origin.empty()) return false;
  bool ok = false;
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
    if (!client_id.empty()) {
      if (auto c = tenancy::effective_client(*ctx.state, tx, client_id))
        ok = lists_origin(*c, origin);
      return;
    }
    // Every client of a child inherits the fallback client's origins.
    if (const auto& p = ctx.state->platform->client;
        !ctx.state->control_plane && p && lists_origin(*p, origin)) {
      ok = true;
      return;
    }
    for (const auto& c : tx.list("client", store::ListQuery::first(10000))) {
      if (lists_origin(c.data, origin)) {
        ok = true;
        return;
      }
    }
  });
  return ok;
}

http::Response with_cors(Ctx& ctx, http::Response r) {
  std::string_view origin = ctx.req.header("origin");
  if (origin.empty()) return r;
  const std::string client_id = requesting_client(ctx);
  if (!client_id.empty() && origin_allowed(ctx, origin, client_id)) {
    r.set_header("access-control-allow-origin", std::string(origin));
    r.set_header("access-control-allow-credentials", "true");
    r.add_header("vary", "Origin");
  }
  return r;
}

Handler cors(Handler h) {
  return [h = std::move(h)](Ctx& ctx) { return with_cors(ctx, h(ctx)); };
}

http::Response preflight(Ctx& ctx) {
  http::Response r = http::Response::empty(204);
  std::string_view origin = ctx.req.header("origin");
  if (origin_allowed(ctx, origin, {})) {
    r.set_header("access-control-allow-origin", std::string(origin));
    r.set_header("access-control-allow-credentials", "true");
    r.set_header("access-control-allow-methods", "GET, POST, OPTIONS");
    r.set_header("access-control-allow-headers", "Content-Type, Authorization, Auth0-Client");
    r.set_header("access-control-max-age", "86400");
    r.add_header("vary", "Origin");
  }
  return r;
}

http::Response userinfo(Ctx& ctx) {
  std::string_view authz = ctx.req.header("authorization");
  auto unauthorized = [&](std::string_view why) {
    auto r = http::Response::oauth_error(401, "invalid_token", why);
    r.set_header("www-authenticate", "Bearer error=\"invalid_token\"");
    return r;
  };
  if (!(authz.starts_with("Bearer ") || authz.starts_with("bearer ")) || authz.size() <= 7)
    return unauthorized("Missing bearer token");
  std::string error;
  VerifyOptions opts;
  opts.tenant = ctx.tenant;
  auto jwt = verify_jwt(ctx.e, authz.substr(7), &error, opts);
  if (!jwt) return unauthorized(error);
  const Json& c = jwt->claims;
  const std::string scope = c.value("scope", "");
  if (!has_scope(scope, "openid")) return unauthorized("The token was not issued for openid");
  std::optional<Json> user;
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
    if (auto u = tx.get("user", c.value("sub", ""))) user = std::move(u->data);
  });
  if (!user) return unauthorized("The user no longer exists");
  Json out = user_claims(*user, scope);
  out["sub"] = c.value("sub", "");
  if (c.contains("org_id")) {
    out["org_id"] = c["org_id"];
    out["org_name"] = c.value("org_name", "");
  }
  auto r = http::Response::json(200, out);
  r.set_header("cache-control", "no-store");
  return r;
}

http::Response revoke(Ctx& ctx) {
  const http::Params form = ctx.form_body();
  ClientAuth auth;
  try {
    auth = authenticate_client(ctx, form);
    if (auth.method == "none" && auth.client.value("token_endpoint_auth_method", "") != "none")
      throw OAuthError{401, "invalid_client", "Client authentication is required"};
  } catch (const OAuthError& e) {
    return http::Response::oauth_error(e.status, e.error, e.description);
  }
  const std::string token = form.get_or("token", "");
  if (token.empty()) return http::Response::oauth_error(400, "invalid_request", "Missing token");
  const std::string client_id = auth.client.value("client_id", "");
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    auto r = tx.get("refresh_token", token_id(token));
    // RFC 7009: a token of another client, or an unknown one, is answered like a success.
    if (!r || r->data.value("client_id", "") != client_id) return;
    store::ListQuery q;
    q.field = "family";
    q.value = r->data.value("family", "");
    q.limit = 100000;
    for (const auto& t : tx.list("refresh_token", q)) tx.remove("refresh_token", t.id);
    tx.remove("refresh_token", r->id);
  });
  log_event(ctx, "srrt", {{"client_id", client_id}, {"description", "Refresh token revoked"}});
  return http::Response::empty(200);
}

http::Response introspect(Ctx& ctx) {
  const http::Params form = ctx.form_body();
  ClientAuth auth;
  try {
    auth = authenticate_client(ctx, form);
    if (auth.method == "none")
      throw OAuthError{401, "invalid_client", "Client authentication is required"};
  } catch (const OAuthError& e) {
    return http::Response::oauth_error(e.status, e.error, e.description);
  }
  const std::string token = form.get_or("token", "");
  if (token.empty()) return http::Response::oauth_error(400, "invalid_request", "Missing token");
  Json out = {{"active", false}};
  VerifyOptions opts;
  opts.tenant = ctx.tenant;
  if (auto jwt = verify_jwt(ctx.e, token, nullptr, opts)) {
    const Json& c = jwt->claims;
    out = {{"active", true}, {"token_type", "access_token"}};
    for (const char* k : {"scope", "sub", "aud", "iss", "exp", "iat", "jti", "org_id", "org_name",
                          "tenant_id", "permissions"})
      if (c.contains(k)) out[k] = c[k];
    out["client_id"] = c.value("azp", "");
  } else {
    const int64_t now = ctx.e.clock().now();
    ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
      auto r = tx.get("refresh_token", token_id(token));
      if (!r || r->data.value("used", false) || r->data.value("expires_at", int64_t{0}) <= now)
        return;
      const Json& g = r->data["grant"];
      out = {{"active", true},
             {"token_type", "refresh_token"},
             {"client_id", g.value("client_id", "")},
             {"sub", g.value("user_id", "")},
             {"scope", g.value("scope", "")},
             {"exp", r->data.value("expires_at", int64_t{0})},
             {"iat", r->data.value("created_at", int64_t{0})},
             {"iss", ctx.issuer}};
    });
  }
  auto r = http::Response::json(200, out);
  r.set_header("cache-control", "no-store");
  return r;
}

// The client as the logout checks see it (a child's allowed_logout_urls include the fallback
// client's).
std::optional<Json> client_by_id(Ctx& ctx, std::string_view id) {
  std::optional<Json> c;
  if (id.empty()) return c;
  ctx.e.store().read(ctx.tenant,
                     [&](store::Tx& tx) { c = tenancy::effective_client(*ctx.state, tx, id); });
  return c;
}

http::Response signed_out(Ctx& ctx) {
  auto r = page(ctx, 200, "Signed out", "<h1>You have signed out</h1>");
  r.add_header("set-cookie", clear_session_cookie(ctx));
  return r;
}

// Ends the session, logs it, and shows the signed-out page or redirects to `target` (already
// checked against the client's allowed logout URLs).
http::Response finish_logout(Ctx& ctx, const std::string& client_id, const std::string& target) {
  if (auto session = end_session(ctx))
    log_event(ctx, "slo",
              {{"client_id", client_id},
               {"user_id", session->data.value("user_id", "")},
               {"description", "User successfully logged out"}});
  if (target.empty()) return signed_out(ctx);
  auto r = http::Response::redirect(target);
  r.add_header("set-cookie", clear_session_cookie(ctx));
  return r;
}

http::Response logout_v2(Ctx& ctx) {
  const std::string return_to = ctx.query.get_or("returnTo", "");
  const std::string client_id = ctx.query.get_or("client_id", "");
  if (!return_to.empty()) {
    auto client = client_by_id(ctx, client_id);
    if (!client || !contains(client->value("allowed_logout_urls", Json::array()), return_to))
      return error_page(ctx, 400, "invalid_request",
                        "The returnTo URL is not in the allowed logout URLs of the client");
  }
  return finish_logout(ctx, client_id, return_to);
}

http::Response logout_oidc(Ctx& ctx) {
  const http::Params p = ctx.req.method == "POST" ? ctx.form_body() : ctx.query;
  const std::string hint = p.get_or("id_token_hint", "");
  const std::string redirect = p.get_or("post_logout_redirect_uri", "");
  std::string client_id = p.get_or("client_id", "");
  if (!hint.empty()) {
    VerifyOptions opts;
    opts.tenant = ctx.tenant;
    opts.check_expiry = false;  // an expired ID token still names who is logging out
    auto jwt = verify_jwt(ctx.e, hint, nullptr, opts);
    if (!jwt) return error_page(ctx, 400, "invalid_request", "Invalid id_token_hint");
    const std::string aud = jwt->claims.value("aud", "");
    if (!client_id.empty() && client_id != aud)
      return error_page(ctx, 400, "invalid_request", "client_id does not match the id_token_hint");
    client_id = aud;
  }
  if (!redirect.empty()) {
    auto client = client_by_id(ctx, client_id);
    if (!client || !contains(client->value("allowed_logout_urls", Json::array()), redirect))
      return error_page(ctx, 400, "invalid_request",
                        "post_logout_redirect_uri is not an allowed logout URL of the client");
  }
  std::string target = redirect;
  if (auto state = p.get("state"); state && !redirect.empty())
    target += (redirect.find('?') == std::string::npos ? "?" : "&") + std::string("state=") +
              http::url_encode(*state);
  return finish_logout(ctx, client_id, target);
}

}  // namespace

Handler with_cors_handler(Handler h) { return cors(std::move(h)); }

void register_endpoint_routes(Routes& r) {
  r.add("GET", "/userinfo", cors(userinfo));
  r.add("POST", "/userinfo", cors(userinfo));
  r.add("OPTIONS", "/userinfo", preflight);
  r.add("POST", "/oauth/revoke", cors(revoke));
  r.add("OPTIONS", "/oauth/revoke", preflight);
  r.add("OPTIONS", "/oauth/token", preflight);
  r.add("POST", "/oauth/introspect", introspect);
  r.add("GET", "/v2/logout", logout_v2);
  r.add("GET", "/oidc/logout", logout_oidc);
  r.add("POST", "/oidc/logout", logout_oidc);
}

}  // namespace ks::oidc
