#pragma once
// One client connection on one event loop: reads (through TLS when it came in on the HTTPS
// listener), parses with RequestParser, dispatches to the engine, writes responses strictly in
// request order, and enforces the timeouts against slow clients.
//
// Lifetime: reference counted on the loop thread. The two libuv handles hold one reference each
// until their close callbacks; every write, shutdown and thread-pool job holds one more. So a
// connection that closes while the engine still works on its request stays alive until the job
// returns, and the response is then dropped.
#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>

#include "core/http/http.h"
#include "server/http1.h"
#include "server/loop_context.h"
#include "server/tls.h"

namespace ks::server {

class Connection {
 public:
  // Accepts one pending connection on `listener`.
  static void accept(LoopContext& ctx, uv_stream_t* listener, bool tls);

  // Server drain: an idle connection closes now; a busy one closes after its current response.
  void drain();
  // Closes at once (drain deadline).
  void abort() { close(); }

  // LoopContext's intrusive list.
  Connection* next = nullptr;
  Connection* prev = nullptr;

 private:
  enum class State {
    kHandshake,   // TLS handshake in progress
    kIdle,        // waiting for the next request
    kHead,        // request head arriving
    kBody,        // request body arriving
    kDispatched,  // the engine has the request
    kWriting,     // the response is being written
    kLinger,      // write side shut down; draining unread input before closing
    kClosed,
  };

  Connection(LoopContext& ctx, bool tls);
  ~Connection() = default;
  void ref() { ++refs_; }
  void unref() {
    if (--refs_ == 0) delete this;
  }

  // Input.
  static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  void on_ciphertext(const char* data, size_t len);
  void pump_tls();
  void on_plaintext(const char* data, size_t len);
  size_t parse(const char* data, size_t len);
  void parse_pending();
  void on_peer_eof();
  void update_reading();
  bool can_parse() const {
    return state_ == State::kIdle || state_ == State::kHead || state_ == State::kBody;
  }
  size_t pending_size() const { return pending_.size() - pending_pos_; }

  // Requests.
  void dispatch();
  static void run_work(uv_work_t* work);
  static void after_work(uv_work_t* work, int status);
  void respond(http::Response response);
  void send_error(int status, std::string message, std::string_view error_code = {});
  void send(http::Response& response, bool keep_alive, std::string_view method,
            std::string_view path, std::string_view request_id);
  void finish_response();

  // Output.
  void write(std::string head, std::string body, bool ends_response);
  void flush_tls();
  static void on_write(uv_write_t* req, int status);

  // Timers.
  void arm_timer(uint64_t ms);
  static void on_timer(uv_timer_t* timer);

  // Closing.
  void close_gracefully();
  static void on_shutdown(uv_shutdown_t* req, int status);
  void close();
  static void on_close(uv_handle_t* handle);

  LoopContext& ctx_;
  uv_tcp_t tcp_{};
  uv_timer_t timer_{};
  uv_work_t work_{};
  uv_shutdown_t shutdown_{};
  int refs_ = 2;  // tcp_ and timer_
  State state_;
  bool reading_ = false;
  bool peer_eof_ = false;
  bool close_after_response_ = false;
  bool discard_input_ = false;
  bool tls_bytes_seen_ = false;
  std::unique_ptr<TlsSession> tls_;
  std::string remote_;

  RequestParser parser_;
  // Bytes received but not parsed yet: requests pipelined behind the one in flight.
  std::string pending_;
  size_t pending_pos_ = 0;

  // The request in flight: parser_.request() (the engine reads it, on the thread pool when
  // not inline, while the loop leaves the parser alone), and its response.
  http::Response response_;
  bool keep_alive_ = true;
  uint64_t request_start_ns_ = 0;
};

}  // namespace ks::server
