#include "core/oidc/authorize.h"

#include "core/crypto/crypto.h"
#include "core/http/form.h"
#include "core/oidc/flow.h"
#include "core/tenancy/fallback.h"

namespace ks::oidc {

Json AuthRequest::to_json() const {
  return {{"client_id", client_id},
          {"redirect_uri", redirect_uri},
          {"response_mode", response_mode},
          {"scope", scope},
          {"state", state},
          {"nonce", nonce},
          {"code_challenge", code_challenge},
          {"audience", audience},
          {"org_id", org_id},
          {"org_name", org_name},
          {"prompt", prompt},
          {"login_hint", login_hint},
          {"screen_hint", screen_hint},
          {"connection", connection},
          {"max_age", max_age},
          {"upstream_nonce", upstream_nonce},
          {"upstream_verifier", upstream_verifier},
          {"upstream_binding", upstream_binding}};
}

AuthRequest AuthRequest::from_json(const Json& j) {
  AuthRequest a;
  a.client_id = j.value("client_id", "");
  a.redirect_uri = j.value("redirect_uri", "");
  a.response_mode = j.value("response_mode", "query");
  a.scope = j.value("scope", "");
  a.state = j.value("state", "");
  a.nonce = j.value("nonce", "");
  a.code_challenge = j.value("code_challenge", "");
  a.audience = j.value("audience", "");
  a.org_id = j.value("org_id", "");
  a.org_name = j.value("org_name", "");
  a.prompt = j.value("prompt", "");
  a.login_hint = j.value("login_hint", "");
  a.screen_hint = j.value("screen_hint", "");
  a.connection = j.value("connection", "");
  a.max_age = j.value("max_age", int64_t{-1});
  a.upstream_nonce = j.value("upstream_nonce", "");
  a.upstream_verifier = j.value("upstream_verifier", "");
  a.upstream_binding = j.value("upstream_binding", "");
  return a;
}

namespace {

bool contains(const Json& list, std::string_view v) {
  if (!list.is_array()) return false;
  for (const auto& x : list)
    if (x.is_string() && x.get<std::string>() == v) return true;
  return false;
}

std::string origin_of(std::string_view url) {
  auto scheme = url.find("://");
  if (scheme == std::string_view::npos) return {};
  auto slash = url.find('/', scheme + 3);
  return std::string(url.substr(0, slash));
}

// The JavaScript string literal of s, safe inside a <script> element.
std::string js_string(std::string_view s) {
  std::string out = Json(std::string(s)).dump();
  std::string safe;
  for (char c : out) {
    if (c == '<')
      safe += "\\u003c";
    else if (c == '>')
      safe += "\\u003e";
    else if (c == '&')
      safe += "\\u0026";
    else
      safe.push_back(c);
  }
  return safe;
}

}  // namespace

http::Response respond(Ctx& ctx, const AuthRequest& ar, const Json& client, const Json& params) {
  (void)ctx;
  http::Params p;
  for (auto it = params.begin(); it != params.end(); ++it) p.add(it.key(), it->get<std::string>());
  if (!ar.state.empty() && !params.contains("state")) p.add("state", ar.state);
  if (ar.response_mode == "fragment")
    return http::Response::redirect(ar.redirect_uri + "#" + p.encode());
  if (ar.response_mode == "form_post") {
    std::string inputs;
    for (const auto& [k, v] : p.items())
      inputs += "<input type=\"hidden\" name=\"" + html_escape(k) + "\" value=\"" + html_escape(v) +
                "\">";
    auto r = http::Response::html(
        200,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Submit</title></head>"
        "<body onload=\"document.forms[0].submit()\"><form method=\"post\" action=\"" +
            html_escape(ar.redirect_uri) + "\">" + inputs +
            "<noscript><button type=\"submit\">Continue</button></noscript></form></body></html>");
    r.set_header("cache-control", "no-store");
    return r;
  }
  if (ar.response_mode == "web_message") {
    Json response = Json::object();
    for (const auto& [k, v] : p.items()) response[k] = v;
    const std::string origin = origin_of(ar.redirect_uri);
    std::string msg = Json{{"type", "authorization_response"}, {"response", response}}.dump();
    auto r = http::Response::html(
        200,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Authorization "
        "response</title></head><body><script>(function(){var t=window.opener||window.parent;"
        "t.postMessage(JSON.parse(" +
            js_string(msg) + ")," + js_string(origin) + ");})();</script></body></html>");
    r.set_header("cache-control", "no-store");
    (void)client;
    return r;
  }
  const char sep = ar.redirect_uri.find('?') == std::string::npos ? '?' : '&';
  return http::Response::redirect(ar.redirect_uri + sep + p.encode());
}

http::Response respond_error(Ctx& ctx, const AuthRequest& ar, const Json& client,
                             std::string_view error, std::string_view description) {
  return respond(ctx, ar, client,
                 {{"error", std::string(error)}, {"error_description", std::string(description)}});
}

std::string save_login_tx(Ctx& ctx, const AuthRequest& ar, std::string& csrf) {
  const std::string id = ctx.e.rng().token(24);
  csrf = ctx.e.rng().token(24);
  const int64_t now = ctx.e.clock().now();
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    insert_expiring(
        tx, "login_tx", token_id(id),
        {{"request", ar.to_json()}, {"csrf", csrf}, {"expires_at", now + kLoginTxLifetime}}, now);
  });
  return id;
}

std::optional<LoginTx> load_login_tx(Ctx& ctx, std::string_view id) {
  if (id.empty() || id.size() > 128) return std::nullopt;
  std::optional<LoginTx> out;
  const int64_t now = ctx.e.clock().now();
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
    auto r = tx.get("login_tx", token_id(id));
    if (!r || r->data.value("expires_at", int64_t{0}) <= now) return;
    AuthRequest ar = AuthRequest::from_json(r->data["request"]);
    auto c = tx.get("client", ar.client_id);
    if (!c) return;
    out = LoginTx{std::string(id), r->data.value("csrf", ""), std::move(ar), std::move(c->data)};
  });
  return out;
}

void drop_login_tx(Ctx& ctx, std::string_view id) {
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) { tx.remove("login_tx", token_id(id)); });
}

std::optional<hooks::Outcome> post_login(Ctx& ctx, const AuthRequest& ar, const Json& client,
                                         const std::string& user_id, Grant& g) {
  if (ctx.state->hooks_for(hooks::Trigger::kPostLogin).empty()) return std::nullopt;
  Json event = {{"client", hook_client(client)},
                {"transaction",
                 {{"requested_scopes", split_scope(ar.scope)},
                  {"audience", ar.audience},
                  {"redirect_uri", ar.redirect_uri},
                  {"protocol", "oidc-basic-profile"}}}};
  std::optional<Json> user;
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
    if (auto u = tx.get("user", user_id)) user = std::move(u->data);
    std::vector<std::string> roles;
    const auto all = store::ListQuery::first(1000);
    std::vector<std::string> role_ids;
    for (const auto& l : tx.links_from("user_role", user_id, all)) role_ids.push_back(l.to);
    if (!ar.org_id.empty()) {
      for (const auto& l : tx.links_from("org_member_role", ar.org_id + "\n" + user_id, all))
        role_ids.push_back(l.to);
      if (auto o = tx.get("organization", ar.org_id)) {
        Json org = {{"id", ar.org_id}, {"name", o->data.value("name", "")}};
        for (const char* k : {"display_name", "metadata"})
          if (o->data.contains(k)) org[k] = o->data[k];
        event["organization"] = std::move(org);
      }
    }
    for (const auto& id : role_ids)
      if (auto r = tx.get("role", id)) {
        const std::string name = r->data.value("name", "");
        if (std::find(roles.begin(), roles.end(), name) == roles.end()) roles.push_back(name);
      }
    event["authorization"] = {{"roles", roles}};
  });
  if (!user) return std::nullopt;  // gone meanwhile: the token endpoint refuses the code
  event["user"] = hook_user(*user);
  auto out = run_hooks(ctx, hooks::Trigger::kPostLogin, std::move(event), "f",
                       {{"client_id", ar.client_id}, {"user_id", user_id}});
  if (!out || !out->ok()) return out;
  g.access_claims = out->access_token_claims;
  g.id_claims = out->id_token_claims;
  if (!out->app_metadata.empty() || !out->user_metadata.empty()) {
    ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
      auto u = tx.get("user", user_id);
      if (!u) return;
      if (apply_hook_metadata(u->data, *out)) {
        u->data["updated_at"] = iso8601(ctx.e.clock().now_ms());
        tx.update("user", user_id, u->data);
      }
    });
  }
  return out;
}

http::Response complete_authorization(Ctx& ctx, const AuthRequest& ar, const Json& client,
                                      const std::string& user_id, int64_t auth_time,
                                      const std::string& session_id,
                                      const std::vector<http::Header>& extra_headers) {
  auto with_headers = [&](http::Response r) {
    for (const auto& h : extra_headers) r.add_header(h.name, h.value);
    return r;
  };
  bool member = true;
  if (!ar.org_id.empty()) {
    ctx.e.store().read(
        ctx.tenant, [&](store::Tx& tx) { member = tx.linked("org_member", ar.org_id, user_id); });
  }
  if (!member) {
    log_event(ctx, "f",
              {{"description", "User is not a member of the specified organization"},
               {"client_id", ar.client_id},
               {"user_id", user_id}});
    return with_headers(respond_error(ctx, ar, client, "access_denied",
                                      "User is not a member of the specified organization"));
  }
  Grant g;
  if (auto out = post_login(ctx, ar, client, user_id, g)) {
    if (!out->ok())
      return with_headers(respond_error(ctx, ar, client, "access_denied", hook_message(*out)));
  }
  const std::string code = ctx.e.rng().token(32);
  g.user_id = user_id;
  g.client_id = ar.client_id;
  g.scope = ar.scope;
  g.audience = ar.audience;
  g.nonce = ar.nonce;
  g.org_id = ar.org_id;
  g.org_name = ar.org_name;
  g.session_id = session_id;
  g.auth_time = auth_time;
  const int64_t now = ctx.e.clock().now();
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    insert_expiring(tx, "auth_code", token_id(code),
                    {{"grant", g.to_json()},
                     {"redirect_uri", ar.redirect_uri},
                     {"code_challenge", ar.code_challenge},
                     {"expires_at", now + kCodeLifetime},
                     {"used", false},
                     {"family", ""}},
                    now);
  });
  return with_headers(respond(ctx, ar, client, {{"code", code}}));
}

namespace {

http::Response authorize(Ctx& ctx) {
  const http::Params params = ctx.req.method == "POST" ? ctx.form_body() : ctx.query;
  AuthRequest ar;
  ar.client_id = params.get_or("client_id", "");
  ar.redirect_uri = params.get_or("redirect_uri", "");
  if (ar.client_id.empty())
    return error_page(ctx, 400, "invalid_request", "Missing required parameter: client_id");
  // The client as flows see it: a child's URL lists include the control plane's fallback client's.
  std::optional<Json> client;
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
    client = tenancy::effective_client(*ctx.state, tx, ar.client_id);
  });
  if (!client) return error_page(ctx, 400, "invalid_request", "Unknown client: " + ar.client_id);
  // Never redirect to an unregistered URI: an error page instead (no open redirects).
  if (ar.redirect_uri.empty() ||
      !contains(client->value("callbacks", Json::array()), ar.redirect_uri))
    return error_page(ctx, 400, "invalid_request",
                      "The redirect_uri is not in the list of allowed callback URLs of the client");

  ar.response_mode = params.get_or("response_mode", "query");
  ar.state = params.get_or("state", "");
  if (ar.response_mode != "query" && ar.response_mode != "fragment" &&
      ar.response_mode != "form_post" && ar.response_mode != "web_message") {
    ar.response_mode = "query";
    return respond_error(ctx, ar, *client, "invalid_request", "Unsupported response_mode");
  }
  if (ar.response_mode == "web_message" &&
      !contains(client->value("web_origins", Json::array()), origin_of(ar.redirect_uri)))
    return error_page(ctx, 400, "invalid_request",
                      "The origin of redirect_uri is not an allowed web origin of the client");

  const std::string response_type = params.get_or("response_type", "");
  if (response_type != "code")
    return respond_error(ctx, ar, *client, "unsupported_response_type",
                         "Unsupported response_type: " + response_type);
  ar.scope = params.get_or("scope", "openid");
  ar.nonce = params.get_or("nonce", "");
  ar.prompt = params.get_or("prompt", "");
  ar.login_hint = params.get_or("login_hint", "");
  ar.screen_hint = params.get_or("screen_hint", "");
  ar.connection = params.get_or("connection", "");
  ar.audience = params.get_or("audience", "");
  if (auto ma = params.get("max_age")) {
    try {
      ar.max_age = std::stoll(*ma);
    } catch (const std::exception&) {
      return respond_error(ctx, ar, *client, "invalid_request", "max_age must be a number");
    }
  }

  // PKCE: S256 only; required for public clients.
  ar.code_challenge = params.get_or("code_challenge", "");
  const std::string method =
      params.get_or("code_challenge_method", ar.code_challenge.empty() ? "" : "plain");
  const bool is_public = client->value("token_endpoint_auth_method", "") == "none";
  if (!ar.code_challenge.empty() && method != "S256")
    return respond_error(ctx, ar, *client, "invalid_request", "code_challenge_method must be S256");
  if (is_public && ar.code_challenge.empty())
    return respond_error(ctx, ar, *client, "invalid_request",
                         "Public clients must use PKCE (code_challenge with S256)");
  if (!ar.code_challenge.empty() &&
      (ar.code_challenge.size() != 43 || !crypto::base64url_decode(ar.code_challenge)))
    return respond_error(ctx, ar, *client, "invalid_request", "Malformed code_challenge");

  if (!ar.audience.empty()) {
    bool found = false;
    ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
      found = tx.find("resource_server", ar.audience).has_value();
    });
    if (!found)
      return respond_error(ctx, ar, *client, "access_denied", "Service not found: " + ar.audience);
  }
  if (auto org = params.get("organization"); org && !org->empty()) {
    std::optional<Json> rec;
    ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) { rec = find_organization(tx, *org); });
    if (!rec)
      return respond_error(ctx, ar, *client, "invalid_request",
                           "No organization found by that id or name");
    ar.org_id = rec->value("id", "");
    ar.org_name = rec->value("name", "");
  }

  // A federated connection logs in at its upstream identity provider (prompt=none never shows
  // a login UI, so it is answered from the session alone, below).
  if (!ar.connection.empty() && ar.connection != kDatabaseConnection) {
    std::optional<Json> con;
    ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
      con = tenancy::effective_connection(*ctx.state, tx, ar.connection);
    });
    if (!con)
      return respond_error(ctx, ar, *client, "invalid_request", "the connection was not found");
    if (is_federated_strategy(con->value("strategy", "")) && ar.prompt != "none")
      return federated_redirect(ctx, ar, *client, *con);
  }

  // An existing session answers without a login page, unless the client asks otherwise.
  auto session = ar.prompt == "login" ? std::nullopt : current_session(ctx);
  if (session && ar.max_age >= 0 &&
      ctx.e.clock().now() - session->data.value("auth_time", int64_t{0}) > ar.max_age)
    session.reset();
  if (session)
    return complete_authorization(ctx, ar, *client, session->data.value("user_id", ""),
                                  session->data.value("auth_time", int64_t{0}), session->id);
  if (ar.prompt == "none")
    return respond_error(ctx, ar, *client, "login_required", "Login required");

  std::string csrf;
  const std::string tx = save_login_tx(ctx, ar, csrf);
  const std::string page = ar.screen_hint == "signup" ? "u/signup" : "u/login";
  return http::Response::redirect(ctx.issuer + page + "?state=" + http::url_encode(tx));
}

}  // namespace

void register_authorize_routes(Routes& r) {
  r.add("GET", "/authorize", authorize);
  r.add("POST", "/authorize", authorize);
}

}  // namespace ks::oidc
