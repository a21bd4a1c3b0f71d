#pragma once
// The keystead network server: HTTP/1.1 (and HTTPS) on libuv, one event loop per thread, each
// with its own SO_REUSEPORT listening socket. Requests the engine can answer without blocking
// run on the loop; the rest run on libuv's thread pool.
#include <atomic>
#include <memory>
#include <vector>

#include "core/config.h"
#include "core/engine.h"

namespace ks::server {

class TlsTicketKeys;

class HttpServer {
 public:
  HttpServer(Engine& engine, const Config& config);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, prints "keystead listening on http[s]://HOST:PORT" to stdout, and serves until
  // SIGTERM or SIGINT; then stops accepting, finishes the requests in flight, closes idle
  // connections and returns. A second signal closes the remaining connections at once.
  // Throws std::runtime_error if the server cannot start.
  void run();

  struct Worker;

 private:
  void request_stop();
  void worker_finished();

  Engine& engine_;
  const Config& config_;
  std::unique_ptr<TlsTicketKeys> tickets_;  // outlives the workers' TLS contexts
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<int> stop_requests_{0};
  std::atomic<int> running_workers_{0};
};

}  // namespace ks::server
