#pragma once
// Outgoing email. core/ stays transport-free and testable: the engine sends through a Mailer it
// is given (Engine::Deps::mailer), by default the one make_mailer() builds (SMTP through libcurl
// and the `dev` outbox file).
#include <memory>
#include <string>

#include "core/json.h"

namespace ks::email {

struct EmailMessage {
  std::string to;       // one address
  std::string from;     // one address
  std::string subject;  // one line
  std::string text;     // text/plain body
  std::string html;     // text/html body (may be empty)
};

// Sends one message synchronously (it is called from the delivery thread, never from a request).
// provider_config is the resolved provider with its credentials decrypted:
//   {"name": "smtp"|"dev", "default_from_address": ..., "tenant": <tenant sending>,
//    "credentials": {"smtp_host", "smtp_port", "smtp_user", "smtp_pass"},
//    "settings": {"tls": "starttls"|"tls"|"none"}}
// Throws std::runtime_error with a readable reason (the SMTP error) when the message was not
// accepted. Implementations must be thread-safe.
class Mailer {
 public:
  virtual ~Mailer() = default;
  virtual void send(const Json& provider_config, const EmailMessage& message) = 0;
};

// SMTP through libcurl: smtp:// (tls "none"), smtp:// with STARTTLS required (tls "starttls",
// the default) or smtps:// (tls "tls"); AUTH with smtp_user/smtp_pass when a user is set;
// 10 s connect and transfer timeouts.
std::shared_ptr<Mailer> smtp_mailer();
// Appends one JSON line per message to `path` ({date, tenant, to, from, subject, text, html}).
std::shared_ptr<Mailer> outbox_mailer(std::string path);
// Routes by provider_config["name"]: "smtp" to smtp_mailer(), "dev" to outbox_mailer(path).
std::shared_ptr<Mailer> make_mailer(std::string outbox_path);

// Message headers must be one line: false if s holds CR, LF or NUL.
bool header_safe(std::string_view s);

}  // namespace ks::email
