#include "server/access_log.h"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace ks::server {
namespace {

// JSON string contents. Bytes outside ASCII are escaped one by one so that a line stays valid
// JSON whatever a client put in its request line.
void append_json_string(std::string& out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (c < 0x20 || c >= 0x7f) {
      out.append("\\u00");
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    } else {
      out.push_back(ch);
    }
  }
  out.push_back('"');
}

void append_timestamp(std::string& out) {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  time_t secs = static_cast<time_t>(ms / 1000);
  tm utc{};
  gmtime_r(&secs, &utc);
  char buf[40];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms % 1000));
  out.append(buf);
}

}  // namespace

void format_access_log(const AccessLogEntry& e, std::string& out) {
  out.clear();
  out.append("{\"ts\":\"");
  append_timestamp(out);
  out.append("\",\"method\":");
  append_json_string(out, e.method.empty() ? "-" : e.method);
  out.append(",\"path\":");
  append_json_string(out, e.path.empty() ? "-" : e.path);
  char buf[96];
  std::snprintf(buf, sizeof buf,
                ",\"status\":%d,\"bytes\":%zu,\"dur_ms\":%.3f,\"remote\":", e.status, e.bytes,
                e.dur_ms);
  out.append(buf);
  append_json_string(out, e.remote);
  out.append(",\"rid\":");
  append_json_string(out, e.request_id);
  out.append(e.tls ? ",\"tls\":true}\n" : ",\"tls\":false}\n");
}

void write_access_log(const AccessLogEntry& entry, std::string& scratch) {
  format_access_log(entry, scratch);
  std::fwrite(scratch.data(), 1, scratch.size(), stderr);
}

}  // namespace ks::server
