// /api/v2/emails/provider (the tenant's email provider) and /api/v2/tickets/password-change,
// /api/v2/tickets/email-verification.
//
// The provider is the record "email_provider"/"default" of the tenant. smtp_pass is write-only:
// it is sealed into the private "_secrets" member (AES-256-GCM under the master key) and
// responses carry credentials.smtp_pass_hint instead. A child tenant's API shows only its own
// provider; sending falls back to the control plane's at send time (core/email/delivery.h).
#include <regex>

#include "core/email/delivery.h"
#include "core/mgmt/common.h"
#include "core/model/schema.h"
#include "core/oidc/email_flows.h"
#include "core/oidc/flow.h"

namespace ks::mgmt {
namespace {

using model::Type;

const model::Schema kProvider = {
    {"name", Type::String, true, 32},
    {"enabled", Type::Boolean},
    {"default_from_address", Type::String, false, 320},
    {"credentials", Type::Object},
    {"settings", Type::Object},
};

const model::Schema kCredentials = {
    {"smtp_host", Type::String, false, 255},
    {"smtp_port", Type::Integer},
    {"smtp_user", Type::String, false, 320},
    {"smtp_pass", Type::String, false, 1024, true},
};

const model::Schema kSettings = {
    {"tls", Type::String, false, 16},
};

const model::Schema kPasswordChangeTicket = {
    {"user_id", Type::String, false, 255},       {"email", Type::String, false, 320},
    {"connection_id", Type::String, false, 128}, {"client_id", Type::String, false, 64},
    {"result_url", Type::String, false, 2048},   {"ttl_sec", Type::Integer},
    {"mark_email_as_verified", Type::Boolean},   {"includeEmailInRedirect", Type::Boolean},
};

const model::Schema kVerificationTicket = {
    {"user_id", Type::String, true, 255},      {"client_id", Type::String, false, 64},
    {"result_url", Type::String, false, 2048}, {"ttl_sec", Type::Integer},
    {"includeEmailInRedirect", Type::Boolean},
};

[[noreturn]] void provider_not_found() {
  throw http::HttpError{404, "Email provider is not configured", "inexistent_email_provider"};
}

bool valid_address(const std::string& a) {
  auto at = a.find('@');
  return at != std::string::npos && at > 0 && at + 1 < a.size() &&
         a.find_first_of(" \t\r\n<>\",;") == std::string::npos &&
         a.find('\0') == std::string::npos && a.find('@', at + 1) == std::string::npos;
}

// Checks the parts of a POST/PATCH body that the schemas cannot express.
void check_provider_body(const Json& body) {
  if (body.contains("name")) {
    const std::string name = body["name"].get<std::string>();
    if (name != "smtp" && name != "dev")
      model::invalid_body("Payload validation error: 'No enum match for: \"" + name +
                          "\"' on property name (smtp, dev).");
  }
  if (body.contains("default_from_address") &&
      !valid_address(body["default_from_address"].get<std::string>()))
    model::invalid_body(
        "Payload validation error: 'Object didn't pass validation for format email' on "
        "property default_from_address.");
  if (body.contains("credentials")) {
    const Json& c = body["credentials"];
    kCredentials.check(c, true);
    if (c.contains("smtp_host")) {
      static const std::regex kHost(
          R"(^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)$)");
      if (!std::regex_match(c["smtp_host"].get<std::string>(), kHost))
        model::invalid_body(
            "Payload validation error: 'smtp_host must be a host name or an IP address' on "
            "property credentials.smtp_host.");
    }
    if (c.contains("smtp_port")) {
      const auto port = c["smtp_port"].get<int64_t>();
      if (port < 1 || port > 65535)
        model::invalid_body(
            "Payload validation error: 'smtp_port must be between 1 and 65535' on property "
            "credentials.smtp_port.");
    }
  }
  if (body.contains("settings")) {
    const Json& s = body["settings"];
    kSettings.check(s, true);
    if (s.contains("tls")) {
      const std::string tls = s["tls"].get<std::string>();
      if (tls != "starttls" && tls != "tls" && tls != "none")
        model::invalid_body("Payload validation error: 'No enum match for: \"" + tls +
                            "\"' on property settings.tls (starttls, tls, none).");
    }
  }
}

// Applies body to the stored provider document: top-level members replace, credentials and
// settings merge key by key (null removes); smtp_pass goes into the sealed secrets.
void apply_provider(Ctx& ctx, const Json& body, Json& doc) {
  for (const char* k : {"name", "enabled", "default_from_address"})
    if (body.contains(k)) doc[k] = body[k];
  if (body.contains("settings")) {
    Json settings = doc.value("settings", Json::object());
    for (auto& [k, v] : body["settings"].items()) {
      if (v.is_null())
        settings.erase(k);
      else
        settings[k] = v;
    }
    doc["settings"] = settings;
  }
  Json credentials = doc.value("credentials", Json::object());
  Json secrets = Json::object();
  if (doc.contains("_secrets") && doc["_secrets"].is_string()) {
    if (auto opened =
            ctx.e.open(doc["_secrets"].get<std::string>(), email::provider_aad(ctx.tenant)))
      secrets = Json::parse(*opened, nullptr, false);
    if (!secrets.is_object()) secrets = Json::object();
  }
  if (body.contains("credentials")) {
    for (auto& [k, v] : body["credentials"].items()) {
      Json& target = k == "smtp_pass" ? secrets : credentials;
      if (v.is_null())
        target.erase(k);
      else
        target[k] = v;
    }
  }
  credentials.erase("smtp_pass_hint");
  if (secrets.contains("smtp_pass"))
    credentials["smtp_pass_hint"] = secret_hint(secrets["smtp_pass"].get<std::string>());
  doc["credentials"] = credentials;
  doc["_secrets"] = ctx.e.seal(secrets.dump(), email::provider_aad(ctx.tenant));

  if (doc.value("name", "") == "smtp") {
    for (const char* k : {"smtp_host", "smtp_port"})
      if (!credentials.contains(k))
        model::invalid_body(std::string("Payload validation error: 'Missing required property: ") +
                            k + "' on property credentials.");
  }
}

http::Response get_provider(Ctx& ctx) {
  authorize(ctx, "read:email_provider");
  std::optional<Json> doc;
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
    if (auto r = tx.get(email::kProviderKind, email::kProviderId)) doc = std::move(r->data);
  });
  if (!doc) provider_not_found();
  return http::Response::json(200, public_view(*doc));
}

http::Response create_provider(Ctx& ctx) {
  authorize(ctx, "create:email_provider");
  Json body = ctx.json_body();
  kProvider.check(body);
  check_provider_body(body);
  Json doc = {{"name", body["name"]},       {"enabled", true},
              {"default_from_address", ""}, {"credentials", Json::object()},
              {"settings", Json::object()}, {"created_at", now_iso(ctx)}};
  if (body["name"] == "smtp") doc["settings"]["tls"] = "starttls";
  apply_provider(ctx, body, doc);
  doc["updated_at"] = doc["created_at"];
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    if (tx.get(email::kProviderKind, email::kProviderId))
      throw http::HttpError{409, "An email provider is already configured; update it instead",
                            "email_provider_conflict"};
    tx.insert(email::kProviderKind, email::kProviderId, doc);
  });
  return http::Response::json(201, public_view(doc));
}

http::Response update_provider(Ctx& ctx) {
  authorize(ctx, "update:email_provider");
  Json body = ctx.json_body();
  kProvider.check(body, true);
  check_provider_body(body);
  Json out;
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    auto r = tx.get(email::kProviderKind, email::kProviderId);
    if (!r) provider_not_found();
    Json doc = r->data;
    if (body.contains("name") && body["name"] == "smtp" &&
        !doc.value("settings", Json::object()).contains("tls") &&
        !(body.contains("settings") && body["settings"].contains("tls")))
      doc["settings"]["tls"] = "starttls";
    apply_provider(ctx, body, doc);
    doc["updated_at"] = now_iso(ctx);
    tx.update(email::kProviderKind, email::kProviderId, doc);
    out = public_view(doc);
  });
  return http::Response::json(200, out);
}

http::Response delete_provider(Ctx& ctx) {
  authorize(ctx, "delete:email_provider");
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    if (!tx.remove(email::kProviderKind, email::kProviderId)) provider_not_found();
  });
  return http::Response::empty(204);
}

// ---- tickets ------------------------------------------------------------------------------------

void ticket_common(const Json& body, oidc::TicketSpec& spec) {
  if (body.contains("ttl_sec")) {
    const auto ttl = body["ttl_sec"].get<int64_t>();
    if (ttl < 0 || ttl > oidc::kMaxTicketTtl)
      model::invalid_body("Payload validation error: 'ttl_sec must be between 0 and " +
                          std::to_string(oidc::kMaxTicketTtl) + "' on property ttl_sec.");
    spec.ttl = ttl == 0 ? oidc::kDefaultTicketTtl : ttl;
  }
  if (body.contains("result_url")) {
    const std::string url = body["result_url"].get<std::string>();
    if (!(url.starts_with("https://") || url.starts_with("http://")) || url.size() < 9 ||
        url.find_first_of(" \t\r\n") != std::string::npos)
      model::invalid_body(
          "Payload validation error: 'result_url must be an absolute http(s) URL' on property "
          "result_url.");
    spec.result_url = url;
  }
  spec.include_email_in_redirect = body.value("includeEmailInRedirect", false);
  spec.client_id = body.value("client_id", "");
}

http::Response password_change_ticket(Ctx& ctx) {
  authorize(ctx, "create:user_tickets");
  Json body = ctx.json_body();
  kPasswordChangeTicket.check(body);
  oidc::TicketSpec spec;
  spec.type = std::string(oidc::kTicketPasswordChange);
  ticket_common(body, spec);
  spec.mark_email_as_verified = body.value("mark_email_as_verified", false);
  const bool by_id = body.contains("user_id");
  const bool by_email = body.contains("email") || body.contains("connection_id");
  if (by_id == by_email)
    model::invalid_body(
        "Payload validation error: give either user_id, or email and connection_id.");
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
    if (by_id) {
      spec.user_id = must_get(tx, "user", body["user_id"].get<std::string>()).id;
      return;
    }
    if (!body.contains("email") || !body.contains("connection_id"))
      model::invalid_body("Payload validation error: 'email' and 'connection_id' go together.");
    auto con = tx.get("connection", body["connection_id"].get<std::string>());
    if (!con) not_found("connection");
    if (con->data.value("strategy", "") != "auth0")
      model::invalid_body("The connection is not a database connection");
    auto user =
        oidc::find_db_user(tx, con->data.value("name", ""), body["email"].get<std::string>());
    if (!user) not_found("user");
    spec.user_id = user->id;
  });
  const std::string url = oidc::create_ticket(ctx, spec);
  return http::Response::json(201, {{"ticket", url}});
}

http::Response email_verification_ticket(Ctx& ctx) {
  authorize(ctx, "create:user_tickets");
  Json body = ctx.json_body();
  kVerificationTicket.check(body);
  oidc::TicketSpec spec;
  spec.type = std::string(oidc::kTicketEmailVerification);
  ticket_common(body, spec);
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
    auto user = must_get(tx, "user", body["user_id"].get<std::string>());
    if (user.data.value("email", "").empty())
      model::invalid_body("The user does not have an email address");
    spec.user_id = user.id;
  });
  const std::string url = oidc::create_ticket(ctx, spec);
  return http::Response::json(201, {{"ticket", url}});
}

}  // namespace

void register_email_routes(Routes& r) {
  r.add("GET", "/api/v2/emails/provider", get_provider);
  r.add("POST", "/api/v2/emails/provider", create_provider);
  r.add("PATCH", "/api/v2/emails/provider", update_provider);
  r.add("DELETE", "/api/v2/emails/provider", delete_provider);
  r.add("POST", "/api/v2/tickets/password-change", password_change_ticket);
  r.add("POST", "/api/v2/tickets/email-verification", email_verification_ticket);
}

}  // namespace ks::mgmt
