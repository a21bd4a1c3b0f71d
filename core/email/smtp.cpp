// The SMTP sender: libcurl's smtp(s):// with its MIME API (multipart/alternative, quoted-
// printable bodies), STARTTLS when required, and AUTH when a user is configured.
#include <curl/curl.h>

#include <cstdio>
#include <ctime>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>

#include "core/crypto/crypto.h"
#include "core/email/mailer.h"

namespace ks::email {
namespace {

constexpr long kTimeoutSeconds = 10;

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
      throw std::runtime_error("libcurl initialisation failed");
  });
}

struct EasyHandle {
  CURL* h = curl_easy_init();
  ~EasyHandle() {
    if (h) curl_easy_cleanup(h);
  }
};

struct StringList {
  curl_slist* list = nullptr;
  ~StringList() { curl_slist_free_all(list); }
  void add(const std::string& s) {
    curl_slist* n = curl_slist_append(list, s.c_str());
    if (!n) throw std::bad_alloc();
    list = n;
  }
  curl_slist* release() {
    curl_slist* l = list;
    list = nullptr;
    return l;
  }
};

struct MimeHandle {
  curl_mime* m = nullptr;
  ~MimeHandle() { curl_mime_free(m); }
};

// One address, no display name, nothing that could end a header or an SMTP command.
void check_address(const std::string& a, const char* what) {
  const auto at = a.find('@');
  if (a.empty() || a.size() > 320 || at == std::string::npos || at == 0 || at + 1 == a.size() ||
      a.find_first_of(" \t\r\n<>\"") != std::string::npos || a.find('\0') != std::string::npos)
    throw std::runtime_error(std::string("invalid ") + what + " address: " + a);
}

bool ascii_printable(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c > 0x7e) return false;
  return true;
}

// RFC 2047 encoded words for a non-ASCII subject, split on UTF-8 character boundaries.
std::string encode_subject(const std::string& subject) {
  if (ascii_printable(subject)) return subject;
  std::string out;
  size_t i = 0;
  while (i < subject.size()) {
    size_t end = std::min(subject.size(), i + 45);
    while (end < subject.size() && end > i &&
           (static_cast<unsigned char>(subject[end]) & 0xC0) == 0x80)
      --end;
    if (end == i) end = std::min(subject.size(), i + 45);
    if (!out.empty()) out += ' ';
    out +=
        "=?UTF-8?B?" + crypto::base64_encode(std::string_view(subject).substr(i, end - i)) + "?=";
    i = end;
  }
  return out;
}

// Bodies go out with CRLF line ends, so quoted-printable keeps them as line breaks.
std::string crlf(const std::string& s) {
  std::string out;
  out.reserve(s.size() + s.size() / 32);
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) out.push_back('\r');
    out.push_back(s[i]);
  }
  return out;
}

std::string rfc5322_date() {
  static const char* const kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d +0000", kDays[tm.tm_wday],
                tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buf;
}

std::string smtp_url(const Json& credentials, const std::string& tls) {
  const std::string host = credentials.value("smtp_host", "");
  if (host.empty() || host.find_first_of("/?#@ \t\r\n") != std::string::npos)
    throw std::runtime_error("invalid smtp_host: '" + host + "'");
  const Json& port_v = credentials.contains("smtp_port") ? credentials["smtp_port"] : Json();
  long port = tls == "tls" ? 465 : 587;
  if (port_v.is_number_integer()) port = port_v.get<long>();
  if (port < 1 || port > 65535) throw std::runtime_error("invalid smtp_port");
  const bool ipv6 = host.find(':') != std::string::npos && host.front() != '[';
  return std::string(tls == "tls" ? "smtps://" : "smtp://") + (ipv6 ? "[" + host + "]" : host) +
         ":" + std::to_string(port);
}

class SmtpMailer final : public Mailer {
 public:
  SmtpMailer() : rng_(crypto::system_random()) { global_init(); }

  void send(const Json& config, const EmailMessage& m) override {
    check_address(m.to, "recipient");
    check_address(m.from, "sender");
    if (!header_safe(m.subject)) throw std::runtime_error("the subject must be one line");
    const Json credentials = config.value("credentials", Json::object());
    const std::string tls = config.value("settings", Json::object()).value("tls", "starttls");
    if (tls != "starttls" && tls != "tls" && tls != "none")
      throw std::runtime_error("unknown tls setting '" + tls + "'");
    const std::string url = smtp_url(credentials, tls);
    const std::string user = credentials.value("smtp_user", "");
    const std::string pass = credentials.value("smtp_pass", "");

    MimeHandle mime;  // freed after the easy handle is cleaned up, as libcurl requires
    EasyHandle easy;
    if (!easy.h) throw std::runtime_error("libcurl: cannot create a handle");
    CURL* h = easy.h;
    char err[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, kTimeoutSeconds);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, kTimeoutSeconds);
    curl_easy_setopt(h, CURLOPT_USE_SSL,
                     static_cast<long>(tls == "none" ? CURLUSESSL_NONE : CURLUSESSL_ALL));
    if (!user.empty()) {
      curl_easy_setopt(h, CURLOPT_USERNAME, user.c_str());
      curl_easy_setopt(h, CURLOPT_PASSWORD, pass.c_str());
    }
    const std::string mail_from = "<" + m.from + ">";
    curl_easy_setopt(h, CURLOPT_MAIL_FROM, mail_from.c_str());
    StringList rcpt;
    rcpt.add("<" + m.to + ">");
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt.list);

    StringList headers;
    headers.add("Date: " + rfc5322_date());
    headers.add("From: " + m.from);
    headers.add("To: " + m.to);
    headers.add("Subject: " + encode_subject(m.subject));
    headers.add("Message-ID: <" + rng_->hex(32) + m.from.substr(m.from.find('@')) + ">");
    headers.add("Auto-Submitted: auto-generated");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.list);

    // multipart/mixed (curl's top level) holding one inline multipart/alternative part:
    // text/plain first, text/html last (the preferred one).
    mime.m = curl_mime_init(h);
    curl_mime* alt = curl_mime_init(h);
    if (!mime.m || !alt) throw std::bad_alloc();
    const std::string text_body = crlf(m.text), html_body = crlf(m.html);
    curl_mimepart* text = curl_mime_addpart(alt);
    curl_mime_data(text, text_body.data(), text_body.size());
    curl_mime_type(text, "text/plain; charset=utf-8");
    curl_mime_encoder(text, "quoted-printable");
    if (!m.html.empty()) {
      curl_mimepart* html = curl_mime_addpart(alt);
      curl_mime_data(html, html_body.data(), html_body.size());
      curl_mime_type(html, "text/html; charset=utf-8");
      curl_mime_encoder(html, "quoted-printable");
    }
    curl_mimepart* inline_part = curl_mime_addpart(mime.m);
    curl_mime_subparts(inline_part, alt);  // the part owns alt now
    curl_mime_type(inline_part, "multipart/alternative");
    StringList disposition;
    disposition.add("Content-Disposition: inline");
    curl_mime_headers(inline_part, disposition.release(), 1);
    curl_easy_setopt(h, CURLOPT_MIMEPOST, mime.m);

    const CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
      long reply = 0;
      curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &reply);
      std::string why = err[0] ? std::string(err) : std::string(curl_easy_strerror(rc));
      while (!why.empty() && (why.back() == '\n' || why.back() == '\r')) why.pop_back();
      std::string msg = "SMTP delivery via " + url + " failed: " + why;
      if (reply > 0) msg += " (last reply " + std::to_string(reply) + ")";
      throw std::runtime_error(msg);
    }
  }

 private:
  std::unique_ptr<crypto::Random> rng_;
};

}  // namespace

std::shared_ptr<Mailer> smtp_mailer() { return std::make_shared<SmtpMailer>(); }

}  // namespace ks::email
