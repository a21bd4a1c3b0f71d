#include "core/oidc/flow.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "core/crypto/crypto.h"
#include "core/http/form.h"
#include "core/oidc/oidc.h"
#include "core/tenancy/fallback.h"

namespace ks::oidc {

// ---- grants and tokens -----------------------------------------------------------------------

Json Grant::to_json() const {
  Json j = {{"user_id", user_id},   {"client_id", client_id},   {"scope", scope},
            {"audience", audience}, {"nonce", nonce},           {"org_id", org_id},
            {"org_name", org_name}, {"session_id", session_id}, {"auth_time", auth_time}};
  if (!access_claims.empty()) j["access_claims"] = access_claims;
  if (!id_claims.empty()) j["id_claims"] = id_claims;
  return j;
}

Grant Grant::from_json(const Json& j) {
  Grant g;
  g.user_id = j.value("user_id", "");
  g.client_id = j.value("client_id", "");
  g.scope = j.value("scope", "");
  g.audience = j.value("audience", "");
  g.nonce = j.value("nonce", "");
  g.org_id = j.value("org_id", "");
  g.org_name = j.value("org_name", "");
  g.session_id = j.value("session_id", "");
  g.auth_time = j.value("auth_time", int64_t{0});
  g.access_claims = j.value("access_claims", Json::object());
  g.id_claims = j.value("id_claims", Json::object());
  return g;
}

std::string token_id(std::string_view token) {
  return crypto::base64url_encode(crypto::sha256(token));
}

std::vector<std::string> split_scope(std::string_view scope) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < scope.size()) {
    while (i < scope.size() && std::isspace(static_cast<unsigned char>(scope[i]))) ++i;
    size_t j = i;
    while (j < scope.size() && !std::isspace(static_cast<unsigned char>(scope[j]))) ++j;
    std::string_view w = scope.substr(i, j - i);
    if (!w.empty() && std::find(out.begin(), out.end(), w) == out.end()) out.emplace_back(w);
    i = j;
  }
  return out;
}

std::string join_scope(const std::vector<std::string>& scopes) {
  std::string out;
  for (const auto& s : scopes) {
    if (!out.empty()) out.push_back(' ');
    out += s;
  }
  return out;
}

bool has_scope(std::string_view scope, std::string_view want) {
  auto v = split_scope(scope);
  return std::find(v.begin(), v.end(), want) != v.end();
}

namespace {

const std::set<std::string> kOidcScopes = {"openid",  "profile", "email",
                                           "address", "phone",   "offline_access"};

bool client_allows(const Json& client, std::string_view grant) {
  for (const auto& g : client.value("grant_types", Json::array()))
    if (g.is_string() && g.get<std::string>() == grant) return true;
  return false;
}

}  // namespace

std::string default_audience(const Json& settings) {
  auto it = settings.find("default_audience");
  return it != settings.end() && it->is_string() ? it->get<std::string>() : std::string();
}

int64_t capped_lifetime(int64_t lifetime, const Json& settings, std::string_view setting) {
  if (auto cap = tenancy::integer_setting(settings, setting)) return std::min(lifetime, *cap);
  return lifetime;
}

Json issue_user_tokens(Ctx& ctx, const Json& client, const Grant& grant, std::string family,
                       bool mint_refresh) {
  EngineImpl& e = ctx.e;
  const int64_t now = e.clock().now();
  const Json& settings = ctx.state->settings;
  std::string audience = grant.audience;
  if (audience.empty()) audience = default_audience(settings);
  std::optional<Json> api, user;
  std::vector<std::string> permissions;
  const auto requested = split_scope(grant.scope);
  e.store().read(ctx.tenant, [&](store::Tx& tx) {
    if (!audience.empty())
      if (auto r = tx.find("resource_server", audience)) api = std::move(r->data);
    if (auto u = tx.get("user", grant.user_id)) user = std::move(u->data);
    if (api) permissions = user_permissions(tx, grant.user_id, audience, grant.org_id);
  });
  if (!audience.empty() && !api)
    throw OAuthError{403, "access_denied", "Service not found: " + audience};
  if (!user) throw OAuthError{400, "invalid_grant", "The user no longer exists"};
  if (user->value("blocked", false)) throw OAuthError{400, "invalid_grant", "user is blocked"};

  // Scopes: OIDC scopes as requested; API scopes only if the API defines them, and with RBAC
  // only those the user holds.
  std::vector<std::string> scopes;
  const bool rbac = api && api->value("enforce_policies", false);
  for (const auto& s : requested) {
    if (kOidcScopes.count(s)) {
      scopes.push_back(s);
      continue;
    }
    if (!api) continue;
    bool defined = false;
    for (const auto& d : api->value("scopes", Json::array()))
      defined = defined || d.value("value", "") == s;
    if (!defined) continue;
    if (rbac && std::find(permissions.begin(), permissions.end(), s) == permissions.end()) continue;
    scopes.push_back(s);
  }
  const std::string scope = join_scope(scopes);
  const bool openid = has_scope(scope, "openid");
  const std::string userinfo = ctx.issuer + "userinfo";

  Json aud;
  if (api) {
    aud = openid ? Json::array({audience, userinfo}) : Json(audience);
  } else {
    aud = userinfo;
  }
  const int64_t lifetime =
      capped_lifetime(api ? api->value("token_lifetime", int64_t{e.cfg().access_token_lifetime})
                          : e.cfg().access_token_lifetime,
                      settings, "access_token_lifetime");
  Json at = {{"iss", ctx.issuer},      {"sub", grant.user_id},     {"aud", aud},
             {"azp", grant.client_id}, {"scope", scope},           {"iat", now},
             {"exp", now + lifetime},  {"jti", e.rng().token(16)}, {"tenant_id", ctx.tenant}};
  if (!grant.org_id.empty()) {
    at["org_id"] = grant.org_id;
    at["org_name"] = grant.org_name;
  }
  const std::string dialect = api ? api->value("token_dialect", "access_token") : "";
  if (rbac && (dialect == "access_token_authz" || dialect == "rfc9068_profile_authz"))
    at["permissions"] = permissions;
  add_hook_claims(at, grant.access_claims);
  const std::string access_token = sign_token(ctx, at, "at+jwt");

  Json body = {{"access_token", access_token},
               {"token_type", "Bearer"},
               {"expires_in", lifetime},
               {"scope", scope}};

  if (openid) {
    const int64_t id_lifetime =
        client.value("jwt_configuration", Json::object()).value("lifetime_in_seconds", 36000);
    const std::string digest = crypto::sha256(access_token);
    Json id = user_claims(*user, scope);
    id["iss"] = ctx.issuer;
    id["sub"] = grant.user_id;
    id["aud"] = grant.client_id;
    id["azp"] = grant.client_id;
    id["iat"] = now;
    id["exp"] = now + id_lifetime;
    id["auth_time"] = grant.auth_time;
    id["at_hash"] = crypto::base64url_encode(digest.substr(0, 16));
    id["tenant_id"] = ctx.tenant;
    if (!grant.nonce.empty()) id["nonce"] = grant.nonce;
    if (!grant.session_id.empty()) id["sid"] = grant.session_id;
    if (!grant.org_id.empty()) {
      id["org_id"] = grant.org_id;
      id["org_name"] = grant.org_name;
    }
    add_hook_claims(id, grant.id_claims);
    body["id_token"] = sign_token(ctx, id, "JWT");
  }

  const bool offline = has_scope(scope, "offline_access") &&
                       client_allows(client, "refresh_token") &&
                       (!api || api->value("allow_offline_access", false));
  if (offline && mint_refresh) {
    const Json rt_cfg = client.value("refresh_token", Json::object());
    const int64_t rt_lifetime = capped_lifetime(rt_cfg.value("token_lifetime", int64_t{2592000}),
                                                settings, "refresh_token_lifetime");
    const std::string rt = e.rng().token(32);
    if (family.empty()) family = e.rng().token(16);
    Grant issued = grant;
    issued.scope = scope;
    issued.audience = audience;
    e.store().write(ctx.tenant, [&](store::Tx& tx) {
      insert_expiring(tx, "refresh_token", token_id(rt),
                      {{"family", family},
                       {"grant", issued.to_json()},
                       {"client_id", grant.client_id},
                       {"user_id", grant.user_id},
                       {"created_at", now},
                       {"expires_at", now + rt_lifetime},
                       {"used", false}},
                      now);
    });
    body["refresh_token"] = rt;
  }
  return body;
}

// ---- users -----------------------------------------------------------------------------------

bool user_password_matches(const std::optional<store::Record>& user, std::string_view password) {
  // The hash of a random password with the default parameters, made once.
  static const std::string dummy = [] {
    auto rng = crypto::system_random();
    return crypto::password_hash(rng->token(16), *rng);
  }();
  const std::string* hash = nullptr;
  if (user) {
    auto it = user->data.find("_password");
    if (it != user->data.end() && it->is_string()) hash = &it->get_ref<const std::string&>();
  }
  const bool ok = crypto::password_verify(hash ? *hash : dummy, password);
  return hash && ok;
}

std::optional<Json> find_organization(store::Tx& tx, const std::string& id_or_name) {
  if (auto r = tx.get("organization", id_or_name)) return std::move(r->data);
  if (auto n = tx.find("organization", id_or_name)) return std::move(n->data);
  return std::nullopt;
}

std::optional<store::Record> find_db_user(store::Tx& tx, std::string_view connection,
                                          std::string_view email) {
  std::string key(connection);
  key.push_back('\n');
  for (char c : email)
    key.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  return tx.find("user", key);
}

Json user_claims(const Json& user, std::string_view scope) {
  Json c = Json::object();
  if (has_scope(scope, "profile")) {
    for (const char* k : {"name", "nickname", "given_name", "family_name", "picture", "updated_at"})
      if (user.contains(k)) c[k] = user[k];
  }
  if (has_scope(scope, "email")) {
    if (user.contains("email")) c["email"] = user["email"];
    c["email_verified"] = user.value("email_verified", false);
  }
  if (has_scope(scope, "phone") && user.contains("phone_number")) {
    c["phone_number"] = user["phone_number"];
    c["phone_number_verified"] = user.value("phone_verified", false);
  }
  return c;
}

std::vector<std::string> user_permissions(store::Tx& tx, std::string_view user_id,
                                          std::string_view audience, std::string_view org_id) {
  std::set<std::string> out;
  const std::string prefix = std::string(audience) + "\n";
  auto take = [&](const std::vector<store::Link>& links) {
    for (const auto& l : links)
      if (l.to.starts_with(prefix)) out.insert(l.to.substr(prefix.size()));
  };
  const auto all = store::ListQuery::first(100000);
  take(tx.links_from("user_permission", user_id, all));
  std::vector<std::string> roles;
  for (const auto& l : tx.links_from("user_role", user_id, all)) roles.push_back(l.to);
  if (!org_id.empty())
    for (const auto& l :
         tx.links_from("org_member_role", std::string(org_id) + "\n" + std::string(user_id), all))
      roles.push_back(l.to);
  for (const auto& r : roles) take(tx.links_from("role_permission", r, all));
  return {out.begin(), out.end()};
}

void insert_expiring(store::Tx& tx, std::string_view kind, std::string_view id, const Json& data,
                     int64_t now) {
  constexpr size_t kSweep = 4;  // at most this many removed per insert
  for (const auto& r : tx.list(kind, store::ListQuery::first(kSweep))) {
    if (r.data.value("expires_at", int64_t{0}) > now) break;
    tx.remove(kind, r.id);
  }
  tx.insert(kind, id, data);
}

int64_t max_login_attempts(const Json& settings) {
  return tenancy::integer_setting(settings, "brute_force_protection.max_attempts").value_or(10);
}

std::optional<std::string> password_policy_error(const Json& connection, const Json& settings,
                                                 std::string_view pw) {
  const Json options = connection.value("options", Json::object());
  const std::string policy = options.value("password_policy", "");
  size_t min_length = policy == "none" ? 1 : policy == "low" ? 6 : policy == "excellent" ? 10 : 8;
  if (options.contains("password_complexity_options"))
    min_length = options["password_complexity_options"].value("min_length", min_length);
  // The tenant-wide minimum (a setting the platform may put a floor under) raises it.
  if (auto tenant_min = tenancy::integer_setting(settings, "password_min_length"))
    min_length = std::max(min_length, static_cast<size_t>(std::max<int64_t>(*tenant_min, 0)));
  if (pw.size() < min_length)
    return "Password is too weak: use at least " + std::to_string(min_length) + " characters";
  if (pw.size() > 1024) return "Password is too long";
  if (policy == "fair" || policy == "good" || policy == "excellent") {
    int lower = 0, upper = 0, digit = 0, special = 0;
    for (unsigned char c : pw) {
      if (std::islower(c))
        lower = 1;
      else if (std::isupper(c))
        upper = 1;
      else if (std::isdigit(c))
        digit = 1;
      else
        special = 1;
    }
    const int kinds = lower + upper + digit + special;
    if (policy == "fair" ? !(lower && upper && digit) : kinds < 3)
      return "Password is too weak: mix lower case, upper case, digits and symbols";
  }
  return std::nullopt;
}

// ---- sessions --------------------------------------------------------------------------------

namespace {

std::string cookie_name(const Ctx& ctx) { return std::string(kSessionCookie) + "_" + ctx.tenant; }

std::string cookie_path(const Ctx& ctx) {
  auto scheme = ctx.issuer.find("://");
  auto slash = ctx.issuer.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  return slash == std::string::npos ? "/" : ctx.issuer.substr(slash);
}

std::string cookie_attrs(const Ctx& ctx, int64_t max_age) {
  std::string a =
      "; Path=" + cookie_path(ctx) + "; HttpOnly; SameSite=Lax; Max-Age=" + std::to_string(max_age);
  if (ctx.issuer.starts_with("https://")) a += "; Secure";
  return a;
}

}  // namespace

std::optional<Session> current_session(Ctx& ctx) {
  const std::string name = cookie_name(ctx);
  std::string value;
  for (const auto& h : ctx.req.headers) {
    if (h.name != "cookie") continue;
    for (auto& [k, v] : http::parse_cookies(h.value))
      if (k == name) value = v;
  }
  if (value.empty()) return std::nullopt;
  const std::string id = token_id(value);
  std::optional<Session> s;
  const int64_t now = ctx.e.clock().now();
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
    auto r = tx.get("session", id);
    if (!r || r->data.value("expires_at", int64_t{0}) <= now) return;
    auto u = tx.get("user", r->data.value("user_id", ""));
    if (!u || u->data.value("blocked", false)) return;
    s = Session{id, std::move(r->data)};
  });
  return s;
}

std::string start_session(Ctx& ctx, std::string_view user_id, std::string& session_id) {
  const std::string value = ctx.e.rng().token(32);
  session_id = token_id(value);
  const int64_t now = ctx.e.clock().now();
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    insert_expiring(tx, "session", session_id,
                    {{"user_id", std::string(user_id)},
                     {"auth_time", now},
                     {"created_at", now},
                     {"expires_at", now + kSessionLifetime},
                     {"ip", ctx.req.remote_addr},
                     {"user_agent", std::string(ctx.req.header("user-agent"))}},
                    now);
  });
  return cookie_name(ctx) + "=" + value + cookie_attrs(ctx, kSessionLifetime);
}

std::string clear_session_cookie(const Ctx& ctx) {
  return cookie_name(ctx) + "=" + cookie_attrs(ctx, 0);
}

std::optional<Session> end_session(Ctx& ctx) {
  auto s = current_session(ctx);
  if (s) ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) { tx.remove("session", s->id); });
  return s;
}

// ---- log ------------------------------------------------------------------------------------

// ---- hooks -----------------------------------------------------------------------------------

std::optional<hooks::Outcome> run_hooks(Ctx& ctx, hooks::Trigger trigger, Json event,
                                        std::string_view log_type, Json log_fields) {
  const hooks::Scripts& scripts = ctx.state->hooks_for(trigger);
  if (scripts.empty()) return std::nullopt;
  event["tenant"] = {{"id", ctx.tenant}, {"friendly_name", ctx.state->friendly_name()}};
  event["request"] = {{"ip", ctx.req.remote_addr},
                      {"user_agent", std::string(ctx.req.header("user-agent"))},
                      {"method", ctx.req.method},
                      {"hostname", std::string(ctx.req.header("host"))}};
  hooks::Outcome out;
  if (auto* runner = ctx.e.hook_runner()) {
    out = runner->run(trigger, scripts, event);
  } else {
    out.error = "hooks cannot run: this engine was opened without a hook runtime";
  }
  if (!out.ok()) {
    log_fields["description"] = std::string(out.denied ? "Denied by a " : "Failed in a ") +
                                std::string(hooks::trigger_name(trigger)) +
                                " hook: " + hook_message(out);
    if (!out.logs.empty()) log_fields["details"] = {{"hook_logs", out.logs}};
    log_event(ctx, log_type, std::move(log_fields));
  }
  return out;
}

Json hook_user(const Json& user) {
  Json u = Json::object();
  for (const auto& [k, v] : user.items())
    if (!k.starts_with('_')) u[k] = v;
  if (!u.contains("app_metadata")) u["app_metadata"] = Json::object();
  if (!u.contains("user_metadata")) u["user_metadata"] = Json::object();
  return u;
}

Json hook_client(const Json& client) {
  Json c = {{"client_id", client.value("client_id", "")}, {"name", client.value("name", "")}};
  if (client.contains("app_type")) c["app_type"] = client["app_type"];
  if (client.contains("client_metadata")) c["metadata"] = client["client_metadata"];
  return c;
}

std::string hook_message(const hooks::Outcome& out) {
  if (out.denied) return *out.denied;
  return out.error.value_or("");
}

bool apply_hook_metadata(Json& user, const hooks::Outcome& out) {
  bool changed = false;
  const std::pair<const char*, const Json&> members[] = {{"app_metadata", out.app_metadata},
                                                         {"user_metadata", out.user_metadata}};
  for (const auto& [member, changes] : members) {
    if (changes.empty()) continue;
    Json& m = user[member];
    if (!m.is_object()) m = Json::object();
    for (const auto& [k, v] : changes.items()) {
      if (v.is_null())
        m.erase(k);
      else
        m[k] = v;
    }
    changed = true;
  }
  return changed;
}

void add_hook_claims(Json& payload, const Json& claims) {
  for (const auto& [k, v] : claims.items()) {
    if (std::find(std::begin(hooks::kReservedClaims), std::end(hooks::kReservedClaims), k) !=
        std::end(hooks::kReservedClaims))
      continue;
    payload[k] = v;
  }
}

void log_event(EngineImpl& e, std::string_view tenant, std::string_view type, Json fields) {
  const std::string id = e.rng().hex(24);
  fields["log_id"] = id;
  fields["type"] = std::string(type);
  fields["date"] = iso8601(e.clock().now_ms());
  e.store().write(tenant, [&](store::Tx& tx) { tx.insert("log", id, fields); });
}

void log_event(Ctx& ctx, std::string_view type, Json fields) {
  if (!fields.contains("ip")) fields["ip"] = ctx.req.remote_addr;
  if (!fields.contains("user_agent"))
    fields["user_agent"] = std::string(ctx.req.header("user-agent"));
  if (!fields.contains("hostname")) fields["hostname"] = std::string(ctx.req.header("host"));
  log_event(ctx.e, ctx.tenant, type, std::move(fields));
}

// ---- HTML -----------------------------------------------------------------------------------

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

namespace {

bool css_color(const std::string& c) {
  if (c.size() != 4 && c.size() != 7) return false;
  if (c[0] != '#') return false;
  return std::all_of(c.begin() + 1, c.end(),
                     [](char x) { return std::isxdigit(static_cast<unsigned char>(x)); });
}

}  // namespace

http::Response page(Ctx& ctx, int status, std::string_view title, std::string_view body_html) {
  Json branding = Json::object();
  const std::string tenant_name = ctx.state->friendly_name();
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
    if (auto b = tx.get("branding", "default")) branding = std::move(b->data);
  });
  std::string primary = branding.value("colors", Json::object()).value("primary", "#0059d6");
  std::string background =
      branding.value("colors", Json::object()).value("page_background", "#f3f4f6");
  if (!css_color(primary)) primary = "#0059d6";
  if (!css_color(background)) background = "#f3f4f6";
  const std::string logo = branding.value("logo_url", "");
  std::string html =
      "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<title>" +
      html_escape(title) + " · " + html_escape(tenant_name) +
      "</title><style>"
      "body{font-family:system-ui,sans-serif;background:" +
      background +
      ";margin:0}"
      "main{max-width:380px;margin:8vh auto;background:#fff;padding:2rem;border-radius:8px;"
      "box-shadow:0 2px 12px rgba(0,0,0,.1)}h1{font-size:1.4rem;margin:.5rem 0 1.5rem}"
      "label{display:block;margin:.8rem 0 .3rem;font-size:.9rem}input{width:100%;padding:.6rem;"
      "box-sizing:border-box;border:1px solid #ccc;border-radius:4px}button{width:100%;margin-top:"
      "1.2rem;padding:.7rem;border:0;border-radius:4px;color:#fff;font-size:1rem;background:" +
      primary +
      "}.error{background:#fde8e8;color:#9b1c1c;padding:.6rem;border-radius:4px}.logo{max-height:"
      "52px}"
      "p.alt{text-align:center;font-size:.9rem}</style></head><body><main>";
  if (!logo.empty() && (logo.starts_with("https://") || logo.starts_with("http://")))
    html += "<img class=\"logo\" alt=\"\" src=\"" + html_escape(logo) + "\">";
  html += "<div class=\"tenant\">" + html_escape(tenant_name) + "</div>";
  html += body_html;
  html += "</main></body></html>";
  auto r = http::Response::html(status, std::move(html));
  r.set_header("cache-control", "no-store");
  r.set_header("x-frame-options", "DENY");
  r.set_header("content-security-policy",
               "default-src 'none'; style-src 'unsafe-inline'; img-src https: http:; "
               "form-action 'self' https: http:; frame-ancestors 'none'");
  return r;
}

http::Response error_page(Ctx& ctx, int status, std::string_view error,
                          std::string_view description) {
  return page(ctx, status, "Error",
              "<h1>Something went wrong</h1><p class=\"error\"><strong>" + html_escape(error) +
                  "</strong>: " + html_escape(description) + "</p>");
}

}  // namespace ks::oidc
