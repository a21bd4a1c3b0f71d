#include "server/http_server.h"

#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include "server/connection.h"
#include "server/listener.h"
#include "server/loop_context.h"
#include "server/tls.h"

namespace ks::server {
namespace {

// After this long a drain stops waiting for slow clients and closes what is left.
constexpr uint64_t kDrainDeadlineMs = 30000;

enum Command : int { kRun = 0, kDrain = 1, kForceClose = 2 };

// Listening sockets not yet adopted by a loop; closed if startup fails half-way.
struct OwnedFds {
  std::vector<int> fds;
  ~OwnedFds() {
    for (int fd : fds) {
      if (fd >= 0) ::close(fd);
    }
  }
};

void check_uv(int rc, const char* what) {
  if (rc != 0) throw std::runtime_error(std::string(what) + ": " + uv_strerror(rc));
}

}  // namespace

struct HttpServer::Worker {
  Worker(Engine& engine, const Config& config) : ctx(engine, config) {}

  LoopContext ctx;
  std::unique_ptr<TlsContext> tls;
  uv_tcp_t http_listener{};
  uv_tcp_t https_listener{};
  bool has_http = false;
  bool has_https = false;
  uv_async_t command_async{};
  std::atomic<int> command{kRun};
  std::mutex command_mutex;  // command_async may be signalled from other threads until closed
  bool command_open = true;
  uv_timer_t drain_timer{};
  bool drain_started = false;
  bool finished = false;
  // The main worker's loop also watches the signals, and stays up until every worker has
  // finished, so that a second signal can still force the others' connections closed.
  uv_signal_t sigterm{};
  uv_signal_t sigint{};
  uv_async_t all_finished{};
  HttpServer* server = nullptr;
  std::thread thread;

  static void on_http_connection(uv_stream_t* listener, int status) {
    on_connection(listener, status, false);
  }
  static void on_https_connection(uv_stream_t* listener, int status) {
    on_connection(listener, status, true);
  }
  static void on_connection(uv_stream_t* listener, int status, bool tls) {
    if (status < 0) {
      std::fprintf(stderr, "keystead: accept failed: %s\n", uv_strerror(status));
      return;
    }
    Connection::accept(static_cast<Worker*>(listener->data)->ctx, listener, tls);
  }

  static void on_command(uv_async_t* async) {
    auto* w = static_cast<Worker*>(async->data);
    int command = w->command.load();
    if (command >= kDrain) w->begin_drain();
    if (command >= kForceClose) w->close_all();
  }

  static void on_drain_deadline(uv_timer_t* timer) {
    auto* w = static_cast<Worker*>(timer->data);
    if (w->ctx.connection_count > 0) {
      std::fprintf(stderr, "keystead: drain deadline reached; closing %zu connection(s)\n",
                   w->ctx.connection_count);
    }
    w->close_all();
  }

  static void on_drained(void* owner) { static_cast<Worker*>(owner)->finish(); }

  void begin_drain() {
    if (drain_started) return;
    drain_started = true;
    ctx.draining = true;
    if (has_http) uv_close(reinterpret_cast<uv_handle_t*>(&http_listener), nullptr);
    if (has_https) uv_close(reinterpret_cast<uv_handle_t*>(&https_listener), nullptr);
    uv_timer_start(&drain_timer, on_drain_deadline, kDrainDeadlineMs, 0);
    for (Connection* c = ctx.connections; c != nullptr;) {
      Connection* next = c->next;
      c->drain();
      c = next;
    }
    if (ctx.connection_count == 0) finish();
  }

  void close_all() {
    for (Connection* c = ctx.connections; c != nullptr;) {
      Connection* next = c->next;
      c->abort();
      c = next;
    }
  }

  // Every connection is gone: release the loop's own handles so that uv_run returns once the
  // thread-pool jobs still running (for connections already closed) have come back.
  void finish() {
    if (finished) return;
    finished = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&drain_timer), nullptr);
    {
      std::lock_guard<std::mutex> lock(command_mutex);
      command_open = false;
      uv_close(reinterpret_cast<uv_handle_t*>(&command_async), nullptr);
    }
    server->worker_finished();
  }

  static void on_all_finished(uv_async_t* async) {
    auto* w = static_cast<Worker*>(async->data);
    uv_close(reinterpret_cast<uv_handle_t*>(&w->sigterm), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&w->sigint), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&w->all_finished), nullptr);
  }

  static void on_signal(uv_signal_t* handle, int signum) {
    std::fprintf(stderr, "keystead: %s received, %s\n", signum == SIGINT ? "SIGINT" : "SIGTERM",
                 static_cast<Worker*>(handle->data)->server->stop_requests_.load() == 0
                     ? "draining connections"
                     : "closing connections now");
    static_cast<Worker*>(handle->data)->server->request_stop();
  }
};

HttpServer::HttpServer(Engine& engine, const Config& config) : engine_(engine), config_(config) {}

HttpServer::~HttpServer() = default;

void HttpServer::request_stop() {
  int command = ++stop_requests_ == 1 ? kDrain : kForceClose;
  for (auto& w : workers_) {
    std::lock_guard<std::mutex> lock(w->command_mutex);
    if (!w->command_open) continue;
    w->command.store(std::max(w->command.load(), command));
    uv_async_send(&w->command_async);
  }
}

void HttpServer::worker_finished() {
  if (--running_workers_ == 0) uv_async_send(&workers_[0]->all_finished);
}

void HttpServer::run() {
  int threads =
      config_.threads > 0 ? config_.threads : static_cast<int>(std::thread::hardware_concurrency());
  threads = std::max(threads, 1);
  // libuv sizes its (process-wide) thread pool on first use from this variable. The engine's
  // blocking work (database, password hashing, signing) runs there.
  std::string pool_size = std::to_string(std::min(1024, std::max(4, 2 * threads)));
  setenv("UV_THREADPOOL_SIZE", pool_size.c_str(), /*overwrite=*/0);
  std::signal(SIGPIPE, SIG_IGN);

  if (config_.listen.empty() && config_.tls_listen.empty()) {
    throw std::runtime_error("nothing to listen on: set KEYSTEAD_LISTEN or KEYSTEAD_TLS_LISTEN");
  }
  std::optional<TlsMaterial> material;
  if (!config_.tls_listen.empty()) {
    material = load_tls_material(config_);
    tickets_ = std::make_unique<TlsTicketKeys>();
  }

  ListenAddress http_address;
  ListenAddress https_address;
  OwnedFds http_fds;
  OwnedFds https_fds;
  if (!config_.listen.empty()) {
    http_address = resolve_listen_address(config_.listen);
    http_fds.fds = open_listeners(http_address, threads, SOMAXCONN);
  }
  if (!config_.tls_listen.empty()) {
    https_address = resolve_listen_address(config_.tls_listen);
    https_fds.fds = open_listeners(https_address, threads, SOMAXCONN);
  }

  for (int i = 0; i < threads; ++i) {
    auto w = std::make_unique<Worker>(engine_, config_);
    Worker* raw = w.get();
    w->server = this;
    check_uv(uv_loop_init(&w->ctx.loop), "event loop");
    workers_.push_back(std::move(w));
    raw->ctx.owner = raw;
    raw->ctx.on_drained = &Worker::on_drained;
    if (material) {
      raw->tls = std::make_unique<TlsContext>(*material, tickets_.get());
      raw->ctx.tls = raw->tls.get();
    }
    check_uv(uv_async_init(&raw->ctx.loop, &raw->command_async, &Worker::on_command), "async");
    raw->command_async.data = raw;
    check_uv(uv_timer_init(&raw->ctx.loop, &raw->drain_timer), "timer");
    raw->drain_timer.data = raw;
    auto adopt = [&](uv_tcp_t* listener, int& fd, uv_connection_cb cb) {
      check_uv(uv_tcp_init(&raw->ctx.loop, listener), "listener");
      listener->data = raw;
      check_uv(uv_tcp_open(listener, fd), "listener");
      fd = -1;  // the handle owns it now
      check_uv(uv_listen(reinterpret_cast<uv_stream_t*>(listener), SOMAXCONN, cb), "listen");
    };
    if (!http_fds.fds.empty()) {
      adopt(&raw->http_listener, http_fds.fds[i], &Worker::on_http_connection);
      raw->has_http = true;
    }
    if (!https_fds.fds.empty()) {
      adopt(&raw->https_listener, https_fds.fds[i], &Worker::on_https_connection);
      raw->has_https = true;
    }
  }

  Worker& main_worker = *workers_[0];
  for (auto [handle, signum] :
       {std::pair{&main_worker.sigterm, SIGTERM}, std::pair{&main_worker.sigint, SIGINT}}) {
    check_uv(uv_signal_init(&main_worker.ctx.loop, handle), "signal");
    handle->data = &main_worker;
    check_uv(uv_signal_start(handle, &Worker::on_signal, signum), "signal");
  }
  check_uv(
      uv_async_init(&main_worker.ctx.loop, &main_worker.all_finished, &Worker::on_all_finished),
      "async");
  main_worker.all_finished.data = &main_worker;
  running_workers_ = static_cast<int>(workers_.size());

  if (!config_.listen.empty()) {
    std::printf("keystead listening on %s\n", http_address.url("http").c_str());
  }
  if (!config_.tls_listen.empty()) {
    std::printf("keystead listening on %s\n", https_address.url("https").c_str());
  }
  std::fflush(stdout);

  for (size_t i = 1; i < workers_.size(); ++i) {
    Worker* w = workers_[i].get();
    w->thread = std::thread([w] { uv_run(&w->ctx.loop, UV_RUN_DEFAULT); });
  }
  uv_run(&main_worker.ctx.loop, UV_RUN_DEFAULT);
  for (size_t i = 1; i < workers_.size(); ++i) workers_[i]->thread.join();
  for (auto& w : workers_) {
    if (uv_loop_close(&w->ctx.loop) != 0) {
      std::fprintf(stderr, "keystead: warning: an event loop still had open handles at exit\n");
    }
  }
  workers_.clear();
}

}  // namespace ks::server
