#pragma once
// One JSON line per request on stderr:
// {"ts","method","path","status","bytes","dur_ms","remote","rid","tls"}. The path carries no
// query string: queries may hold secrets (codes, tokens).
#include <cstddef>
#include <string>
#include <string_view>

namespace ks::server {

struct AccessLogEntry {
  std::string_view method;
  std::string_view path;
  int status = 0;
  size_t bytes = 0;  // response body bytes sent
  double dur_ms = 0;
  std::string_view remote;
  std::string_view request_id;
  bool tls = false;
};

// Formats the line (with its trailing newline) into `out`, reusing its capacity.
void format_access_log(const AccessLogEntry& entry, std::string& out);
// Formats into `scratch` and writes the line to stderr in one call.
void write_access_log(const AccessLogEntry& entry, std::string& scratch);

}  // namespace ks::server
