#include "server/http1.h"

#include <algorithm>
#include <charconv>

namespace ks::server {
namespace {

RequestParser& self(llhttp_t* p) { return *static_cast<RequestParser*>(p->data); }

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return ascii_lower(x) == ascii_lower(y);
         });
}

// RFC 9110 5.6.2 token characters. llhttp's loose mode lets a few others through in names.
bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

bool splits_head(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

void append_number(std::string& out, size_t n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, end);
}

}  // namespace

const llhttp_settings_t* RequestParser::settings() {
  static const llhttp_settings_t s = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_message_begin = &RequestParser::on_message_begin;
    s.on_url = &RequestParser::on_url;
    s.on_header_field = &RequestParser::on_header_field;
    s.on_header_value = &RequestParser::on_header_value;
    s.on_header_value_complete = &RequestParser::on_header_value_complete;
    s.on_headers_complete = &RequestParser::on_headers_complete;
    s.on_body = &RequestParser::on_body;
    s.on_message_complete = &RequestParser::on_message_complete;
    return s;
  }();
  return &s;
}

RequestParser::RequestParser(const ParserLimits& limits) : limits_(limits) {
  llhttp_init(&parser_, HTTP_REQUEST, settings());
  parser_.data = this;
}

bool RequestParser::take_expect_continue() {
  bool e = expect_continue_;
  expect_continue_ = false;
  return e;
}

int RequestParser::fail(int status, std::string message, std::string_view code) {
  if (phase_ != Phase::kError) {
    error_status_ = status;
    error_message_ = std::move(message);
    error_code_ = code;
    phase_ = Phase::kError;
  }
  return HPE_USER;
}

bool RequestParser::head_too_large(size_t more) const {
  return span_bytes_ + more > limits_.max_header_bytes;
}

int RequestParser::on_message_begin(llhttp_t* p) {
  RequestParser& s = self(p);
  s.phase_ = Phase::kHead;
  http::Request& r = s.request_;
  r.method.clear();
  r.path.clear();
  r.query.clear();
  r.headers.clear();
  r.body.clear();
  if (r.body.capacity() > (64 << 10)) r.body.shrink_to_fit();  // one big body must not pin memory
  r.request_id.clear();
  s.url_.clear();
  s.field_.clear();
  s.value_.clear();
  s.head_bytes_ = 0;
  s.span_bytes_ = 0;
  s.header_count_ = 0;
  s.body_bytes_ = 0;
  s.keep_alive_ = true;
  s.expect_continue_ = false;
  return HPE_OK;
}

int RequestParser::on_url(llhttp_t* p, const char* at, size_t len) {
  RequestParser& s = self(p);
  if (s.url_.empty()) {
    s.request_.method = llhttp_method_name(static_cast<llhttp_method_t>(p->method));  // for logs
  }
  if (s.head_too_large(len)) return s.fail(414, "Request URI too long", "uri_too_long");
  s.span_bytes_ += len;
  s.url_.append(at, len);
  return HPE_OK;
}

int RequestParser::on_header_field(llhttp_t* p, const char* at, size_t len) {
  RequestParser& s = self(p);
  if (s.head_too_large(len)) return s.fail(431, "Request header fields too large");
  s.span_bytes_ += len;
  s.field_.append(at, len);
  return HPE_OK;
}

int RequestParser::on_header_value(llhttp_t* p, const char* at, size_t len) {
  RequestParser& s = self(p);
  if (s.head_too_large(len)) return s.fail(431, "Request header fields too large");
  s.span_bytes_ += len;
  s.value_.append(at, len);
  return HPE_OK;
}

int RequestParser::on_header_value_complete(llhttp_t* p) {
  RequestParser& s = self(p);
  if (++s.header_count_ > s.limits_.max_headers) {
    return s.fail(431,
                  "Too many header fields (limit " + std::to_string(s.limits_.max_headers) + ")");
  }
  if (!is_token(s.field_)) return s.fail(400, "Malformed request: invalid header field name");
  // Trailer fields of a chunked body count against the limits but are not request headers.
  if (s.phase_ == Phase::kHead) {
    std::string name = std::move(s.field_);
    std::transform(name.begin(), name.end(), name.begin(), ascii_lower);
    std::string value = std::move(s.value_);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
    s.request_.headers.push_back({std::move(name), std::move(value)});
  }
  s.field_.clear();
  s.value_.clear();
  return HPE_OK;
}

int RequestParser::on_headers_complete(llhttp_t* p) {
  // Pause so that execute() learns exactly where the head ends and can check its size before
  // any of the body is read.
  self(p).paused_for_headers_ = true;
  return HPE_PAUSED;
}

int RequestParser::on_body(llhttp_t* p, const char* at, size_t len) {
  RequestParser& s = self(p);
  s.body_bytes_ += len;
  if (s.body_bytes_ > s.limits_.max_body_bytes) {
    return s.fail(
        413,
        "Request body exceeds the limit of " + std::to_string(s.limits_.max_body_bytes) + " bytes",
        "payload_too_large");
  }
  s.request_.body.append(at, len);
  return HPE_OK;
}

int RequestParser::on_message_complete(llhttp_t* p) {
  self(p).phase_ = Phase::kComplete;
  return HPE_PAUSED;
}

int RequestParser::validate_head() {
  if (parser_.http_major != 1) {
    return fail(505, "HTTP version not supported");
  }
  request_.method = llhttp_method_name(static_cast<llhttp_method_t>(parser_.method));
  if (parser_.method == HTTP_CONNECT) {
    return fail(405, "CONNECT is not supported");
  }

  size_t host_count = 0;
  std::string_view expect;
  for (const http::Header& h : request_.headers) {
    if (h.name == "host") ++host_count;
    if (h.name == "expect") expect = h.value;
  }
  bool http11 = parser_.http_minor >= 1;
  if (host_count > 1 || (http11 && host_count == 0)) {
    return fail(400, host_count ? "Multiple Host headers" : "Missing Host header");
  }

  // Request target: origin-form, absolute-form (RFC 9112 3.2.2: the authority replaces Host),
  // or asterisk-form for OPTIONS.
  std::string_view url = url_;
  if (!url.empty() && url[0] == '/') {
    request_.set_target(url);
  } else if (url == "*" && parser_.method == HTTP_OPTIONS) {
    request_.set_target(url);
  } else {
    size_t scheme_end = url.find("://");
    std::string_view scheme = url.substr(0, scheme_end == std::string_view::npos ? 0 : scheme_end);
    if (!iequals(scheme, "http") && !iequals(scheme, "https")) {
      return fail(400, "Malformed request target");
    }
    std::string_view rest = url.substr(scheme_end + 3);
    size_t path_start = rest.find_first_of("/?");
    std::string_view authority = rest.substr(0, path_start);
    if (authority.empty()) return fail(400, "Malformed request target");
    std::string_view path = path_start == std::string_view::npos ? "" : rest.substr(path_start);
    std::string target = path.empty() || path[0] == '?' ? "/" : "";
    target.append(path);
    request_.set_target(target);
    bool replaced = false;
    for (http::Header& h : request_.headers) {
      if (h.name == "host") {
        h.value.assign(authority);
        replaced = true;
      }
    }
    if (!replaced) request_.headers.push_back({"host", std::string(authority)});
  }

  bool has_body = (parser_.flags & F_CHUNKED) || parser_.content_length > 0;
  if ((parser_.flags & F_CONTENT_LENGTH) && parser_.content_length > limits_.max_body_bytes) {
    return fail(
        413,
        "Request body exceeds the limit of " + std::to_string(limits_.max_body_bytes) + " bytes",
        "payload_too_large");
  }
  if (!expect.empty()) {
    if (!iequals(expect, "100-continue")) return fail(417, "Unsupported Expect header");
    expect_continue_ = http11 && has_body;
  }
  if ((parser_.flags & F_CONTENT_LENGTH) && !(parser_.flags & F_CHUNKED)) {
    request_.body.reserve(parser_.content_length);
  }
  // An upgrade we do not perform leaves the stream in an unknown protocol: answer, then close.
  keep_alive_ = llhttp_should_keep_alive(&parser_) && !parser_.upgrade;
  phase_ = Phase::kBody;
  return 0;
}

RequestParser::Result RequestParser::error_result(llhttp_errno_t err, size_t consumed) {
  if (phase_ != Phase::kError) {
    switch (err) {
      case HPE_INVALID_VERSION:
      case HPE_PAUSED_H2_UPGRADE:
        fail(505, "HTTP version not supported");
        break;
      default: {
        std::string reason = llhttp_get_error_reason(&parser_) ? llhttp_get_error_reason(&parser_)
                                                               : llhttp_errno_name(err);
        fail(400, "Malformed request: " + reason);
      }
    }
  }
  return {Result::kError, consumed};
}

RequestParser::Result RequestParser::execute(const char* data, size_t len) {
  if (phase_ == Phase::kError) return {Result::kError, 0};
  if (phase_ == Phase::kComplete) {
    phase_ = Phase::kIdle;
    llhttp_resume(&parser_);
  }
  size_t consumed = 0;
  for (;;) {
    const char* start = data + consumed;
    size_t n = len - consumed;
    llhttp_errno_t err = llhttp_execute(&parser_, start, n);
    if (err == HPE_OK) {
      if (phase_ == Phase::kHead) {
        // The head is still incomplete: everything in this chunk belongs to it (give or take
        // the empty lines llhttp skips before a request).
        head_bytes_ += n;
        if (head_bytes_ > limits_.max_header_bytes) {
          fail(431, "Request header fields too large");
          return {Result::kError, len};
        }
      }
      return {Result::kNeedMore, len};
    }
    if (err != HPE_PAUSED) {
      return error_result(err, len);
    }
    size_t k = static_cast<size_t>(llhttp_get_error_pos(&parser_) - start);
    consumed += k;
    if (paused_for_headers_) {
      paused_for_headers_ = false;
      head_bytes_ += k;
      if (head_bytes_ > limits_.max_header_bytes) {
        fail(431, "Request header fields too large");
        return {Result::kError, consumed};
      }
      if (validate_head() != 0) return {Result::kError, consumed};
      llhttp_resume(&parser_);
      continue;  // even with no bytes left: a body-less request completes right away
    }
    // Paused by on_message_complete.
    return {Result::kComplete, consumed};
  }
}

bool status_has_body(int status) { return status >= 200 && status != 204 && status != 304; }

void serialize_response_head(const http::Response& response, const ResponseHeadOptions& options,
                             std::string& out) {
  out.clear();
  out.append("HTTP/1.1 ");
  append_number(out, static_cast<size_t>(response.status));
  out.push_back(' ');
  out.append(http::reason_phrase(response.status));
  out.append("\r\n");
  bool has_request_id = false;
  for (const http::Header& h : response.headers) {
    std::string_view name = h.name;
    if (name.empty() || splits_head(name) || splits_head(h.value)) continue;
    if (iequals(name, "content-length") || iequals(name, "connection") || iequals(name, "date") ||
        iequals(name, "transfer-encoding") || iequals(name, "keep-alive")) {
      continue;
    }
    if (iequals(name, "x-request-id")) has_request_id = true;
    out.append(name);
    out.append(": ");
    out.append(h.value);
    out.append("\r\n");
  }
  if (status_has_body(response.status)) {
    out.append("Content-Length: ");
    append_number(out, response.body.size());
    out.append("\r\n");
  }
  if (!options.date.empty()) {
    out.append("Date: ");
    out.append(options.date);
    out.append("\r\n");
  }
  if (!has_request_id && !options.request_id.empty()) {
    out.append("X-Request-Id: ");
    out.append(options.request_id);
    out.append("\r\n");
  }
  out.append(options.keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n");
}

}  // namespace ks::server
