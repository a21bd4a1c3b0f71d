#pragma once
// Listening sockets: one per event loop, all bound to the same address with SO_REUSEPORT so the
// kernel spreads connections across loops. (libuv 1.44 has no UV_TCP_REUSEPORT.)
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ks::server {

struct ListenAddress {
  sockaddr_storage addr{};
  socklen_t addr_len = 0;

  uint16_t port() const;
  void set_port(uint16_t port);
  // Numeric host for URLs: "127.0.0.1", "[::1]".
  std::string host() const;
  std::string url(std::string_view scheme) const;  // "http://127.0.0.1:8080"
};

// "host:port", "[v6addr]:port" or ":port" (all interfaces). Host names are resolved once, at
// startup. Throws std::runtime_error with a clear message.
ListenAddress resolve_listen_address(const std::string& spec);

// Opens `count` non-blocking listening sockets on `address`. With port 0 the first bind picks a
// port and the others bind that one; `address` is updated. Throws std::runtime_error; on
// failure no socket is left open.
std::vector<int> open_listeners(ListenAddress& address, int count, int backlog);

}  // namespace ks::server
