#pragma once
// HTTP/1.1 on the wire: the llhttp request parser glue and the response head serializer.
// No sockets here. Like h2o's lib/http1.c, the parser is bounded before it runs (head size,
// header count, body size), tells "incomplete" from "malformed", and validates the parsed
// request in a separate step.
#include <llhttp.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "core/http/http.h"

namespace ks::server {

struct ParserLimits {
  size_t max_header_bytes = 16 << 10;  // request line + headers
  size_t max_headers = 100;
  size_t max_body_bytes = 1 << 20;
};

class RequestParser {
 public:
  // Where the parser stands in the current message.
  enum class Phase {
    kIdle,      // between messages: nothing of the next one seen yet
    kHead,      // inside the request line or headers
    kBody,      // headers done, body still arriving
    kComplete,  // request() is ready; the next execute() starts the next message
    kError,     // error_status()/error_message() describe it; the connection must close
  };

  struct Result {
    enum Kind { kNeedMore, kComplete, kError } kind;
    size_t consumed;  // bytes of the input that belong to this and earlier messages
  };

  explicit RequestParser(const ParserLimits& limits);
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // Feeds bytes. Stops right after a complete request (kComplete; the rest of the input is not
  // consumed and must be fed again later) or at the first error.
  Result execute(const char* data, size_t len);

  Phase phase() const { return phase_; }
  // The request being parsed; complete after kComplete. Its body may be moved out.
  http::Request& request() { return request_; }
  // Whether the connection may carry another request after this one (HTTP/1.0 rules,
  // Connection headers, upgrades).
  bool keep_alive() const { return keep_alive_; }
  bool is_head_request() const { return request_.method == "HEAD"; }
  // True once per request whose head asked for "Expect: 100-continue" and whose body is still
  // to come.
  bool take_expect_continue();

  int error_status() const { return error_status_; }
  const std::string& error_message() const { return error_message_; }
  std::string_view error_code() const { return error_code_; }

 private:
  static int on_message_begin(llhttp_t* p);
  static int on_url(llhttp_t* p, const char* at, size_t len);
  static int on_header_field(llhttp_t* p, const char* at, size_t len);
  static int on_header_value(llhttp_t* p, const char* at, size_t len);
  static int on_header_value_complete(llhttp_t* p);
  static int on_headers_complete(llhttp_t* p);
  static int on_body(llhttp_t* p, const char* at, size_t len);
  static int on_message_complete(llhttp_t* p);
  static const llhttp_settings_t* settings();

  int fail(int status, std::string message, std::string_view code = {});
  bool head_too_large(size_t more) const;
  int validate_head();  // the separate validation step; 0 or a fail() result
  Result error_result(llhttp_errno_t err, size_t consumed);

  llhttp_t parser_;
  ParserLimits limits_;
  Phase phase_ = Phase::kIdle;
  http::Request request_;
  std::string url_;
  std::string field_;
  std::string value_;
  size_t head_bytes_ = 0;  // head bytes counted so far (exact once the headers are complete)
  size_t span_bytes_ = 0;  // url + field + value bytes of the current head
  size_t header_count_ = 0;
  size_t body_bytes_ = 0;
  bool keep_alive_ = true;
  bool expect_continue_ = false;
  bool paused_for_headers_ = false;
  int error_status_ = 0;
  std::string error_message_;
  std::string_view error_code_;
};

// The status line and headers of a response. Content-Length, Date, Connection and (when
// missing) X-Request-Id are set here; the response's own values for the first three are
// ignored. Headers whose name or value could split the head (CR, LF, NUL) are dropped.
struct ResponseHeadOptions {
  std::string_view date;        // preformatted IMF-fixdate
  std::string_view request_id;  // added as X-Request-Id when the response lacks one
  bool keep_alive = true;
};
void serialize_response_head(const http::Response& response, const ResponseHeadOptions& options,
                             std::string& out);

// Whether a response with this status carries a body (and a Content-Length) at all.
bool status_has_body(int status);

}  // namespace ks::server
