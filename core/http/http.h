#pragma once
// Transport-free HTTP request/response. The server, the C ABI and tests all build these.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/json.h"

namespace ks::http {

struct Header {
  std::string name;  // lower-case
  std::string value;
};

struct Request {
  std::string method;  // upper-case, e.g. "GET"
  std::string path;    // raw (percent-encoded) path, no query
  std::string query;   // raw query string, without '?'
  std::vector<Header> headers;
  std::string body;
  std::string remote_addr;
  bool secure = false;  // arrived over TLS
  std::string request_id;

  // Splits "path?query" into path and query.
  void set_target(std::string_view target);
  // First header with that (case-insensitive) name, or empty.
  std::string_view header(std::string_view name) const;
  bool has_header(std::string_view name) const;
  void add_header(std::string name, std::string value);
};

struct Response {
  int status = 200;
  std::vector<Header> headers;
  std::string body;

  void set_header(std::string_view name, std::string value);
  void add_header(std::string name, std::string value);
  std::string_view header(std::string_view name) const;

  static Response json(int status, const Json& body);
  static Response html(int status, std::string body);
  static Response redirect(std::string location, int status = 302);
  static Response empty(int status);
  // The Auth0 Management API error shape:
  // {"statusCode":400,"error":"Bad Request","message":"…","errorCode":"invalid_body"}
  static Response error(int status, std::string_view message, std::string_view error_code = {});
  // RFC 6749 error JSON: {"error":"invalid_grant","error_description":"…"}
  static Response oauth_error(int status, std::string_view error, std::string_view description);
};

std::string_view reason_phrase(int status);

// Thrown by handlers for any client error; turned into Response::error by the engine.
struct HttpError {
  int status;
  std::string message;
  std::string error_code;
};

}  // namespace ks::http
