#include "server/listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace ks::server {

uint16_t ListenAddress::port() const {
  if (addr.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port);
  }
  return ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
}

void ListenAddress::set_port(uint16_t port) {
  if (addr.ss_family == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port = htons(port);
  } else {
    reinterpret_cast<sockaddr_in*>(&addr)->sin_port = htons(port);
  }
}

std::string ListenAddress::host() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_addr, buf, sizeof buf);
    return std::string("[") + buf + "]";
  }
  inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&addr)->sin_addr, buf, sizeof buf);
  return buf;
}

std::string ListenAddress::url(std::string_view scheme) const {
  return std::string(scheme) + "://" + host() + ":" + std::to_string(port());
}

ListenAddress resolve_listen_address(const std::string& spec) {
  std::string host;
  std::string port;
  if (!spec.empty() && spec[0] == '[') {
    size_t close = spec.find(']');
    if (close == std::string::npos || close + 1 >= spec.size() || spec[close + 1] != ':') {
      throw std::runtime_error("invalid listen address '" + spec + "' (expected [addr]:port)");
    }
    host = spec.substr(1, close - 1);
    port = spec.substr(close + 2);
  } else {
    size_t colon = spec.rfind(':');
    if (colon == std::string::npos) {
      throw std::runtime_error("invalid listen address '" + spec + "' (expected host:port)");
    }
    host = spec.substr(0, colon);
    port = spec.substr(colon + 1);
  }
  if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos ||
      port.size() > 5 || std::stoi(port) > 65535) {
    throw std::runtime_error("invalid port in listen address '" + spec + "'");
  }

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* result = nullptr;
  int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &result);
  if (rc != 0 || result == nullptr) {
    throw std::runtime_error("cannot resolve listen address '" + spec + "': " + gai_strerror(rc));
  }
  ListenAddress out;
  std::memcpy(&out.addr, result->ai_addr, result->ai_addrlen);
  out.addr_len = result->ai_addrlen;
  freeaddrinfo(result);
  return out;
}

namespace {

[[noreturn]] void fail(const std::vector<int>& fds, const ListenAddress& address,
                       const char* what) {
  int err = errno;
  for (int fd : fds) close(fd);
  throw std::runtime_error(std::string("cannot listen on ") + address.host() + ":" +
                           std::to_string(address.port()) + ": " + what + ": " +
                           std::strerror(err));
}

}  // namespace

// One listening socket, duplicated once per event loop: every loop accepts from the same queue.
// Not SO_REUSEPORT: that would let a second keystead (same user) bind the same port silently and
// split the traffic, where a busy port must be a startup error.
std::vector<int> open_listeners(ListenAddress& address, int count, int backlog) {
  std::vector<int> fds;
  int fd = socket(address.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) fail(fds, address, "socket");
  fds.push_back(fd);
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
    fail(fds, address, "setsockopt");
  }
  if (address.addr.ss_family == AF_INET6) {
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  }
  if (bind(fd, reinterpret_cast<const sockaddr*>(&address.addr), address.addr_len) != 0) {
    fail(fds, address, "bind");
  }
  if (address.port() == 0) {
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
      fail(fds, address, "getsockname");
    }
    address.set_port(bound.ss_family == AF_INET6
                         ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                         : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port));
  }
  if (listen(fd, backlog) != 0) fail(fds, address, "listen");
  for (int i = 1; i < count; ++i) {
    int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (copy < 0) fail(fds, address, "dup");
    fds.push_back(copy);
  }
  return fds;
}

}  // namespace ks::server
