#pragma once
// HTTPS with mbedTLS 2.28, memory-BIO style: the session reads ciphertext from a buffer that the
// connection fills from libuv reads and writes ciphertext into a buffer that the connection
// flushes with uv_write. mbedTLS headers stay inside tls.cpp.
#include <memory>
#include <string>

#include "core/config.h"

namespace ks::server {

struct TlsMaterial {
  std::string cert_pem;  // certificate chain, leaf first
  std::string key_pem;
};

// The certificate and key for the HTTPS listener: config.tls_cert / tls_key, or in dev mode a
// self-signed certificate for localhost/127.0.0.1 kept in {data_dir}/tls (created on first use,
// reused after; a warning is logged). Prod mode without a certificate is an error. Throws
// std::runtime_error.
TlsMaterial load_tls_material(const Config& config);

// Session-ticket keys shared by every loop, so that a resuming client may land on any loop's
// listener. Thread-safe (mbedTLS is built with MBEDTLS_THREADING_C).
class TlsTicketKeys {
 public:
  TlsTicketKeys();  // throws std::runtime_error
  ~TlsTicketKeys();
  TlsTicketKeys(const TlsTicketKeys&) = delete;
  TlsTicketKeys& operator=(const TlsTicketKeys&) = delete;

  struct State;
  State& state() { return *state_; }

 private:
  std::unique_ptr<State> state_;
};

// One per event loop: its own DRBG, certificate and key copies, so loops never contend on a
// lock (RSA blinding state is per key).
class TlsContext {
 public:
  TlsContext(const TlsMaterial& material, TlsTicketKeys* tickets);  // throws std::runtime_error
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  struct State;
  State& state() const { return *state_; }

 private:
  std::unique_ptr<State> state_;
};

// One TLS connection. Results of handshake(), read() and write(): see the constants below.
class TlsSession {
 public:
  static constexpr int kWantRead = -1;  // needs more ciphertext
  static constexpr int kClosed = -2;    // the peer sent close_notify
  static constexpr int kFailed = -3;    // fatal; last_error() says why

  // Returns nullptr if the session cannot be set up (out of memory).
  static std::unique_ptr<TlsSession> create(const TlsContext& context);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Ciphertext received from the peer.
  void feed(const char* data, size_t len);
  // True while fed ciphertext or decrypted plaintext waits inside the session.
  bool has_buffered_input() const;

  // Drives the handshake: 0 when done, kWantRead, or kFailed. CPU work on the calling loop
  // (the private-key operation): acceptable for now; offload it if handshakes dominate.
  int handshake();
  // Decrypts into buf: bytes (> 0), kWantRead, kClosed or kFailed.
  int read(char* buf, size_t size);
  // Encrypts all of data into output(): 0 or kFailed.
  int write(const char* data, size_t len);
  // Queues a close_notify alert into output().
  void close_notify();

  // Ciphertext to send; the caller takes it (e.g. swaps it out) and writes it to the socket.
  std::string& output() { return out_; }
  const std::string& last_error() const { return last_error_; }

  struct State;

 private:
  TlsSession();
  int map_error(int rc);

  std::unique_ptr<State> state_;
  std::string in_;
  size_t in_pos_ = 0;
  std::string out_;
  std::string last_error_;
};

}  // namespace ks::server
