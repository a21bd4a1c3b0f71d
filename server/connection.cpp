#include "server/connection.h"

#include <cstdio>
#include <exception>
#include <utility>

#include "server/access_log.h"

namespace ks::server {
namespace {

// How long a closing connection keeps reading (and discarding) before the socket is closed, so
// that unread request bytes do not turn into a TCP reset that destroys the final response.
constexpr uint64_t kLingerMs = 2000;
constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";

struct WriteOp {
  uv_write_t req;
  Connection* connection;
  std::string head;
  std::string body;
  bool ends_response;
};

http::Response handle_safely(Engine& engine, const http::Request& request) {
  try {
    return engine.handle(request);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "keystead: error: request %s: %s\n", request.request_id.c_str(), e.what());
  } catch (...) {
    std::fprintf(stderr, "keystead: error: request %s: unknown exception\n",
                 request.request_id.c_str());
  }
  return http::Response::error(500, "Internal server error");
}

std::string peer_address(const uv_tcp_t* tcp) {
  sockaddr_storage addr{};
  int len = sizeof addr;
  if (uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return {};
  char buf[64] = {};
  if (addr.ss_family == AF_INET6) {
    uv_ip6_name(reinterpret_cast<const sockaddr_in6*>(&addr), buf, sizeof buf);
  } else {
    uv_ip4_name(reinterpret_cast<const sockaddr_in*>(&addr), buf, sizeof buf);
  }
  return buf;
}

}  // namespace

// ---- accept ----

Connection::Connection(LoopContext& ctx, bool tls)
    : ctx_(ctx), state_(tls ? State::kHandshake : State::kIdle), parser_(ctx.limits) {
  tcp_.data = this;
  timer_.data = this;
  work_.data = this;
  shutdown_.data = this;
}

void Connection::accept(LoopContext& ctx, uv_stream_t* listener, bool tls) {
  auto* c = new Connection(ctx, tls);
  uv_tcp_init(&ctx.loop, &c->tcp_);
  uv_timer_init(&ctx.loop, &c->timer_);
  ctx.add(c);
  if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(&c->tcp_)) != 0) {
    c->close();
    return;
  }
  uv_tcp_nodelay(&c->tcp_, 1);
  c->remote_ = peer_address(&c->tcp_);
  if (tls) {
    c->tls_ = TlsSession::create(*ctx.tls);
    if (!c->tls_) {
      c->close();
      return;
    }
  }
  // Before its first byte a new connection is as idle as a kept-alive one.
  c->arm_timer(static_cast<uint64_t>(ctx.config.idle_timeout_ms));
  c->update_reading();
}

void Connection::drain() {
  close_after_response_ = true;
  switch (state_) {
    case State::kHandshake:
    case State::kIdle:
      close();
      break;
    default:
      break;  // the current request finishes (bounded by the timeouts), then the connection closes
  }
}

// ---- input ----

void Connection::on_alloc(uv_handle_t* handle, size_t /*suggested*/, uv_buf_t* buf) {
  auto* c = static_cast<Connection*>(handle->data);
  buf->base = c->ctx_.read_buffer.get();
  buf->len = LoopContext::kReadBufferSize;
}

void Connection::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* c = static_cast<Connection*>(stream->data);
  if (nread > 0) {
    if (c->discard_input_) return;
    if (c->tls_) {
      c->on_ciphertext(buf->base, static_cast<size_t>(nread));
    } else {
      c->on_plaintext(buf->base, static_cast<size_t>(nread));
    }
  } else if (nread == UV_EOF) {
    c->on_peer_eof();
  } else if (nread < 0) {
    c->close();
  }
}

void Connection::on_ciphertext(const char* data, size_t len) {
  if (state_ == State::kHandshake && !tls_bytes_seen_) {
    // The handshake counts as part of the first request head.
    tls_bytes_seen_ = true;
    arm_timer(static_cast<uint64_t>(ctx_.config.header_timeout_ms));
  }
  tls_->feed(data, len);
  pump_tls();
}

void Connection::pump_tls() {
  if (state_ == State::kHandshake) {
    int rc = tls_->handshake();
    flush_tls();
    if (state_ == State::kClosed || rc == TlsSession::kWantRead) return;
    if (rc != 0) {
      close();  // not TLS, or a handshake we cannot complete: nothing to answer
      return;
    }
    state_ = State::kIdle;
    arm_timer(static_cast<uint64_t>(ctx_.config.idle_timeout_ms));
  }
  // Decrypt only while there is room to keep the plaintext; the rest waits inside the session
  // until parse_pending() comes back here.
  while (state_ != State::kClosed && !discard_input_ && pending_size() < ctx_.max_pending_bytes) {
    int n = tls_->read(ctx_.plaintext_buffer.get(), LoopContext::kPlaintextBufferSize);
    if (n > 0) {
      on_plaintext(ctx_.plaintext_buffer.get(), static_cast<size_t>(n));
      continue;
    }
    flush_tls();  // alerts
    if (n == TlsSession::kClosed) {
      on_peer_eof();
    } else if (n != TlsSession::kWantRead) {
      close();
    }
    break;
  }
  update_reading();
}

void Connection::on_plaintext(const char* data, size_t len) {
  size_t used = 0;
  if (can_parse() && pending_size() == 0) used = parse(data, len);
  if (state_ == State::kClosed || discard_input_ || used == len) {
    update_reading();
    return;
  }
  if (pending_pos_ > 0) {
    pending_.erase(0, pending_pos_);
    pending_pos_ = 0;
  }
  pending_.append(data + used, len - used);
  update_reading();
}

size_t Connection::parse(const char* data, size_t len) {
  size_t total = 0;
  while (total < len && can_parse()) {
    if (state_ == State::kIdle) request_start_ns_ = uv_hrtime();
    RequestParser::Result r = parser_.execute(data + total, len - total);
    total += r.consumed;
    switch (r.kind) {
      case RequestParser::Result::kNeedMore:
        switch (parser_.phase()) {
          case RequestParser::Phase::kHead:
            if (state_ != State::kHead) {
              // The whole head must arrive within the header timeout of its first byte.
              state_ = State::kHead;
              arm_timer(static_cast<uint64_t>(ctx_.config.header_timeout_ms));
            }
            break;
          case RequestParser::Phase::kBody:
            if (state_ != State::kBody && parser_.take_expect_continue()) {
              write(kContinue, {}, false);
            }
            // A body must keep arriving: the same timeout between its pieces.
            state_ = State::kBody;
            arm_timer(static_cast<uint64_t>(ctx_.config.header_timeout_ms));
            break;
          default:
            break;
        }
        break;
      case RequestParser::Result::kComplete:
        dispatch();
        return total;
      case RequestParser::Result::kError:
        send_error(parser_.error_status(), parser_.error_message(), parser_.error_code());
        return total;
    }
  }
  return total;
}

void Connection::parse_pending() {
  while (pending_size() > 0 && can_parse()) {
    size_t used = parse(pending_.data() + pending_pos_, pending_size());
    if (state_ == State::kClosed) return;
    pending_pos_ += used;
    if (used == 0) break;
  }
  if (pending_size() == 0) {
    pending_.clear();
    pending_pos_ = 0;
    if (pending_.capacity() > (64 << 10)) pending_.shrink_to_fit();
  }
  if (tls_ && can_parse() && !discard_input_) pump_tls();
  if (state_ == State::kClosed) return;
  if (peer_eof_ && can_parse()) {
    close();  // the peer sent all it will send and every complete request has been answered
    return;
  }
  update_reading();
}

void Connection::on_peer_eof() {
  peer_eof_ = true;
  switch (state_) {
    case State::kDispatched:
    case State::kWriting:
      // Requests already received are still answered (a client may half-close after sending).
      update_reading();
      break;
    default:
      close();
  }
}

void Connection::update_reading() {
  if (state_ == State::kClosed) return;
  bool want = !peer_eof_ && (discard_input_ || pending_size() < ctx_.max_pending_bytes);
  if (want && !reading_) {
    reading_ = uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), on_alloc, on_read) == 0;
  } else if (!want && reading_) {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
    reading_ = false;
  }
}

// ---- requests ----

void Connection::dispatch() {
  state_ = State::kDispatched;
  uv_timer_stop(&timer_);
  http::Request& request = parser_.request();
  request.remote_addr = remote_;
  request.secure = tls_ != nullptr;
  request.request_id = ctx_.new_request_id();
  keep_alive_ = parser_.keep_alive();

  std::optional<http::Response> quick;
  try {
    quick = ctx_.engine.handle_inline(request);
  } catch (...) {
    quick.reset();  // the worker thread answers, or reports the error
  }
  if (quick) {
    respond(std::move(*quick));
    return;
  }
  ref();
  if (uv_queue_work(&ctx_.loop, &work_, run_work, after_work) != 0) {
    unref();
    respond(http::Response::error(503, "Service unavailable"));
  }
}

void Connection::run_work(uv_work_t* work) {
  // On a thread-pool thread: touches only the request (read) and response_ (written).
  auto* c = static_cast<Connection*>(work->data);
  c->response_ = handle_safely(c->ctx_.engine, c->parser_.request());
}

void Connection::after_work(uv_work_t* work, int status) {
  auto* c = static_cast<Connection*>(work->data);
  if (c->state_ == State::kDispatched) {
    if (status != 0) c->response_ = http::Response::error(503, "Service unavailable");
    c->respond(std::move(c->response_));
  }
  c->response_ = http::Response();
  c->unref();
}

void Connection::respond(http::Response response) {
  if (response.status < 200 || response.status > 599) {
    response = http::Response::error(500, "Internal server error");
  }
  const http::Request& request = parser_.request();
  bool keep_alive = keep_alive_ && !close_after_response_ && !ctx_.draining &&
                    response.header("connection") != "close";
  send(response, keep_alive, request.method, request.path, request.request_id);
}

void Connection::send_error(int status, std::string message, std::string_view error_code) {
  // The request cannot be trusted to have ended where the parser stopped: answer and close,
  // ignoring anything else the client sends.
  discard_input_ = true;
  pending_.clear();
  pending_pos_ = 0;
  http::Response response = http::Response::error(status, message, error_code);
  const http::Request& partial = parser_.request();
  std::string request_id = ctx_.new_request_id();
  if (state_ == State::kIdle) request_start_ns_ = uv_hrtime();
  send(response, false, partial.method, partial.path, request_id);
}

void Connection::send(http::Response& response, bool keep_alive, std::string_view method,
                      std::string_view path, std::string_view request_id) {
  std::string head;
  serialize_response_head(response, {ctx_.http_date(), request_id, keep_alive}, head);
  std::string body;
  if (status_has_body(response.status) && method != "HEAD") body = std::move(response.body);

  AccessLogEntry entry;
  entry.method = method;
  entry.path = path;
  entry.status = response.status;
  entry.bytes = body.size();
  entry.dur_ms = static_cast<double>(uv_hrtime() - request_start_ns_) / 1e6;
  entry.remote = remote_;
  entry.request_id = request_id;
  entry.tls = tls_ != nullptr;
  write_access_log(entry, ctx_.log_scratch);

  close_after_response_ = !keep_alive;
  state_ = State::kWriting;
  // A client that stops reading its response gets the idle timeout, not forever.
  arm_timer(static_cast<uint64_t>(ctx_.config.idle_timeout_ms));
  write(std::move(head), std::move(body), true);
}

void Connection::finish_response() {
  if (close_after_response_) {
    close_gracefully();
    return;
  }
  state_ = State::kIdle;
  arm_timer(static_cast<uint64_t>(ctx_.config.idle_timeout_ms));
  parse_pending();
}

// ---- output ----

void Connection::write(std::string head, std::string body, bool ends_response) {
  if (state_ == State::kClosed) return;
  auto* op = new WriteOp{{}, this, {}, {}, ends_response};
  if (tls_) {
    if (tls_->write(head.data(), head.size()) != 0 || tls_->write(body.data(), body.size()) != 0) {
      delete op;
      close();
      return;
    }
    op->head.swap(tls_->output());
  } else {
    op->head = std::move(head);
    op->body = std::move(body);
  }
  uv_buf_t bufs[2] = {uv_buf_init(op->head.data(), static_cast<unsigned>(op->head.size())),
                      uv_buf_init(op->body.data(), static_cast<unsigned>(op->body.size()))};
  op->req.data = op;
  ref();
  if (uv_write(&op->req, reinterpret_cast<uv_stream_t*>(&tcp_), bufs, op->body.empty() ? 1 : 2,
               on_write) != 0) {
    delete op;
    close();
    unref();
  }
}

void Connection::flush_tls() {
  if (state_ == State::kClosed || tls_->output().empty()) return;
  auto* op = new WriteOp{{}, this, {}, {}, false};
  op->head.swap(tls_->output());
  uv_buf_t buf = uv_buf_init(op->head.data(), static_cast<unsigned>(op->head.size()));
  op->req.data = op;
  ref();
  if (uv_write(&op->req, reinterpret_cast<uv_stream_t*>(&tcp_), &buf, 1, on_write) != 0) {
    delete op;
    close();
    unref();
  }
}

void Connection::on_write(uv_write_t* req, int status) {
  auto* op = static_cast<WriteOp*>(req->data);
  Connection* c = op->connection;
  bool ends_response = op->ends_response;
  delete op;
  if (status < 0) {
    c->close();
  } else if (ends_response && c->state_ == State::kWriting) {
    c->finish_response();
  }
  c->unref();
}

// ---- timers ----

// One timer per connection, re-armed for whatever the connection waits for. A configured
// timeout of 0 disables that timeout.
void Connection::arm_timer(uint64_t ms) {
  if (state_ == State::kClosed) return;
  if (ms == 0) {
    uv_timer_stop(&timer_);
    return;
  }
  uv_timer_start(&timer_, on_timer, ms, 0);
}

void Connection::on_timer(uv_timer_t* timer) {
  auto* c = static_cast<Connection*>(timer->data);
  switch (c->state_) {
    case State::kHead:
    case State::kBody:
      c->send_error(408, "Request timeout", "request_timeout");
      break;
    case State::kDispatched:
    case State::kClosed:
      break;
    default:  // idle keep-alive, stalled handshake, client not reading, linger over
      c->close();
  }
}

// ---- closing ----

void Connection::close_gracefully() {
  if (state_ == State::kClosed || state_ == State::kLinger) return;
  state_ = State::kLinger;
  discard_input_ = true;
  pending_.clear();
  pending_pos_ = 0;
  if (tls_) {
    tls_->close_notify();
    flush_tls();
  }
  if (peer_eof_) {
    close();
    return;
  }
  // uv_shutdown waits for the queued writes, then sends FIN; we keep reading until the peer
  // closes too, or the linger time is up.
  ref();
  if (uv_shutdown(&shutdown_, reinterpret_cast<uv_stream_t*>(&tcp_), on_shutdown) != 0) {
    unref();
    close();
    return;
  }
  arm_timer(kLingerMs);
  update_reading();
}

void Connection::on_shutdown(uv_shutdown_t* req, int /*status*/) {
  static_cast<Connection*>(req->data)->unref();
}

void Connection::close() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  reading_ = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_close);
  ctx_.remove(this);
}

void Connection::on_close(uv_handle_t* handle) { static_cast<Connection*>(handle->data)->unref(); }

}  // namespace ks::server
