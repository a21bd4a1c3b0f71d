#include "server/loop_context.h"

#include <cstdio>

#include "server/connection.h"

namespace ks::server {

LoopContext::LoopContext(Engine& e, const Config& c)
    : engine(e),
      config(c),
      limits{c.max_header_bytes, 100, c.max_body_bytes},
      max_pending_bytes(c.max_header_bytes + c.max_body_bytes),
      read_buffer(new char[kReadBufferSize]),
      plaintext_buffer(new char[kPlaintextBufferSize]),
      rng_(std::random_device{}()) {}

void LoopContext::add(Connection* c) {
  c->prev = nullptr;
  c->next = connections;
  if (connections) connections->prev = c;
  connections = c;
  ++connection_count;
}

void LoopContext::remove(Connection* c) {
  if (c->prev)
    c->prev->next = c->next;
  else
    connections = c->next;
  if (c->next) c->next->prev = c->prev;
  c->next = c->prev = nullptr;
  --connection_count;
  if (draining && connection_count == 0 && on_drained) on_drained(owner);
}

std::string LoopContext::new_request_id() {
  static const char kHex[] = "0123456789abcdef";
  uint64_t v = rng_();
  std::string id(16, '0');
  for (char& ch : id) {
    ch = kHex[v & 0xf];
    v >>= 4;
  }
  return id;
}

std::string_view LoopContext::http_date() {
  time_t now = time(nullptr);
  if (now != date_second_) {
    date_second_ = now;
    // IMF-fixdate spells English names whatever the process locale is.
    static const char* const kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char* const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    tm utc{};
    gmtime_r(&now, &utc);
    char buf[64];
    int n = std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT",
                          kDays[utc.tm_wday], utc.tm_mday, kMonths[utc.tm_mon], utc.tm_year + 1900,
                          utc.tm_hour, utc.tm_min, utc.tm_sec);
    date_.assign(buf, static_cast<size_t>(n));
  }
  return date_;
}

}  // namespace ks::server
