#pragma once
// What every connection of one event loop shares: the loop, the engine, limits, the TLS
// context, scratch buffers, the connection list used for draining. Touched only by its loop's
// thread.
#include <uv.h>

#include <cstddef>
#include <ctime>
#include <memory>
#include <random>
#include <string>
#include <string_view>

#include "core/config.h"
#include "core/engine.h"
#include "server/http1.h"
#include "server/tls.h"

namespace ks::server {

class Connection;

struct LoopContext {
  static constexpr size_t kReadBufferSize = 64 << 10;
  static constexpr size_t kPlaintextBufferSize = 16 << 10;  // one TLS record

  LoopContext(Engine& engine, const Config& config);
  LoopContext(const LoopContext&) = delete;
  LoopContext& operator=(const LoopContext&) = delete;

  uv_loop_t loop{};
  Engine& engine;
  const Config& config;
  ParserLimits limits;
  // Unparsed bytes a connection may hold (pipelined requests) before it stops reading.
  size_t max_pending_bytes;
  TlsContext* tls = nullptr;  // null without an HTTPS listener

  // libuv reads into this one buffer for every connection of the loop: a read callback consumes
  // or copies what it received before returning, so connections keep only their leftovers.
  std::unique_ptr<char[]> read_buffer;
  std::unique_ptr<char[]> plaintext_buffer;
  std::string log_scratch;

  bool draining = false;
  size_t connection_count = 0;
  Connection* connections = nullptr;  // intrusive list
  // Called when the last connection has closed while draining.
  void (*on_drained)(void* owner) = nullptr;
  void* owner = nullptr;

  void add(Connection* c);
  void remove(Connection* c);

  // Short random id for X-Request-Id and the access log (not a secret).
  std::string new_request_id();
  // IMF-fixdate for the Date header, formatted once per second.
  std::string_view http_date();

 private:
  std::mt19937_64 rng_;
  time_t date_second_ = 0;
  std::string date_;
};

}  // namespace ks::server
