#include "server/tls.h"

#include <fcntl.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/x509_crt.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "core/crypto/crypto.h"

namespace ks::server {
namespace {

std::string mbedtls_message(int rc) {
  char buf[160];
  mbedtls_strerror(rc, buf, sizeof buf);
  return buf;
}

std::string read_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(std::string("cannot read ") + what + " '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::filesystem::path& path, const std::string& data, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  bool ok = fd >= 0;
  for (size_t off = 0; ok && off < data.size();) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n <= 0)
      ok = false;
    else
      off += static_cast<size_t>(n);
  }
  if (fd >= 0 && ::close(fd) != 0) ok = false;
  if (!ok) {
    throw std::runtime_error("cannot write '" + path.string() + "': " + std::strerror(errno));
  }
}

void seed(mbedtls_ctr_drbg_context* drbg, mbedtls_entropy_context* entropy, const char* label) {
  int rc = mbedtls_ctr_drbg_seed(drbg, mbedtls_entropy_func, entropy,
                                 reinterpret_cast<const unsigned char*>(label), std::strlen(label));
  if (rc != 0) throw std::runtime_error("TLS random generator: " + mbedtls_message(rc));
}

const char* kAlpn[] = {"http/1.1", nullptr};

}  // namespace

TlsMaterial load_tls_material(const Config& config) {
  if (!config.tls_cert.empty() || !config.tls_key.empty()) {
    if (config.tls_cert.empty() || config.tls_key.empty()) {
      throw std::runtime_error("KEYSTEAD_TLS_CERT and KEYSTEAD_TLS_KEY must be set together");
    }
    return {read_file(config.tls_cert, "TLS certificate"), read_file(config.tls_key, "TLS key")};
  }
  if (!config.dev()) {
    throw std::runtime_error(
        "KEYSTEAD_TLS_LISTEN needs KEYSTEAD_TLS_CERT and KEYSTEAD_TLS_KEY in prod mode");
  }
  namespace fs = std::filesystem;
  fs::path dir = fs::path(config.data_dir) / "tls";
  fs::path cert_path = dir / "dev-cert.pem";
  fs::path key_path = dir / "dev-key.pem";
  std::error_code ec;
  if (fs::exists(cert_path, ec) && fs::exists(key_path, ec)) {
    std::fprintf(stderr,
                 "keystead: warning: no TLS certificate configured; using the self-signed "
                 "development certificate %s\n",
                 cert_path.c_str());
    return {read_file(cert_path, "TLS certificate"), read_file(key_path, "TLS key")};
  }
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error("cannot create '" + dir.string() + "': " + ec.message());
  auto rng = crypto::system_random();
  crypto::CertAndKey generated =
      crypto::self_signed_certificate({"localhost"}, {"127.0.0.1"}, 365, *rng);
  // The key first and private; the certificate last, so its presence means both are complete.
  write_file(key_path, generated.key_pem, 0600);
  write_file(cert_path, generated.cert_pem, 0644);
  std::fprintf(stderr,
               "keystead: warning: no TLS certificate configured; generated a self-signed "
               "development certificate for localhost and 127.0.0.1 at %s\n",
               cert_path.c_str());
  return {std::move(generated.cert_pem), std::move(generated.key_pem)};
}

// ---- session tickets ----

struct TlsTicketKeys::State {
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
  mbedtls_ssl_ticket_context ticket;

  State() {
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    mbedtls_ssl_ticket_init(&ticket);
  }
  ~State() {
    mbedtls_ssl_ticket_free(&ticket);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
  }
};

TlsTicketKeys::TlsTicketKeys() : state_(std::make_unique<State>()) {
  seed(&state_->drbg, &state_->entropy, "keystead-tls-tickets");
  int rc = mbedtls_ssl_ticket_setup(&state_->ticket, mbedtls_ctr_drbg_random, &state_->drbg,
                                    MBEDTLS_CIPHER_AES_256_GCM, 12 * 3600);
  if (rc != 0) throw std::runtime_error("TLS session tickets: " + mbedtls_message(rc));
}

TlsTicketKeys::~TlsTicketKeys() = default;

// ---- per-loop context ----

struct TlsContext::State {
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
  mbedtls_x509_crt cert;
  mbedtls_pk_context key;
  mbedtls_ssl_config conf;

  State() {
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    mbedtls_x509_crt_init(&cert);
    mbedtls_pk_init(&key);
    mbedtls_ssl_config_init(&conf);
  }
  ~State() {
    mbedtls_ssl_config_free(&conf);
    mbedtls_pk_free(&key);
    mbedtls_x509_crt_free(&cert);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
  }

  // Certificate selection by server name. Every name gets the default certificate for now;
  // per-custom-domain certificates plug in here with mbedtls_ssl_set_hs_own_cert().
  static int on_sni(void* /*self*/, mbedtls_ssl_context* /*ssl*/, const unsigned char* /*name*/,
                    size_t /*len*/) {
    return 0;
  }
};

TlsContext::TlsContext(const TlsMaterial& material, TlsTicketKeys* tickets)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  seed(&s.drbg, &s.entropy, "keystead-tls");
  // PEM parsing wants the terminating NUL counted in the length.
  int rc = mbedtls_x509_crt_parse(&s.cert,
                                  reinterpret_cast<const unsigned char*>(material.cert_pem.c_str()),
                                  material.cert_pem.size() + 1);
  if (rc != 0) throw std::runtime_error("cannot parse TLS certificate: " + mbedtls_message(rc));
  rc =
      mbedtls_pk_parse_key(&s.key, reinterpret_cast<const unsigned char*>(material.key_pem.c_str()),
                           material.key_pem.size() + 1, nullptr, 0);
  if (rc != 0) throw std::runtime_error("cannot parse TLS key: " + mbedtls_message(rc));
  rc = mbedtls_pk_check_pair(&s.cert.pk, &s.key);
  if (rc != 0) {
    throw std::runtime_error("TLS key does not match the certificate: " + mbedtls_message(rc));
  }

  rc = mbedtls_ssl_config_defaults(&s.conf, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
                                   MBEDTLS_SSL_PRESET_DEFAULT);
  if (rc != 0) throw std::runtime_error("TLS configuration: " + mbedtls_message(rc));
  mbedtls_ssl_conf_min_version(&s.conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
  mbedtls_ssl_conf_rng(&s.conf, mbedtls_ctr_drbg_random, &s.drbg);
  rc = mbedtls_ssl_conf_own_cert(&s.conf, &s.cert, &s.key);
  if (rc != 0) throw std::runtime_error("TLS certificate: " + mbedtls_message(rc));
  rc = mbedtls_ssl_conf_alpn_protocols(&s.conf, kAlpn);
  if (rc != 0) throw std::runtime_error("TLS ALPN: " + mbedtls_message(rc));
  mbedtls_ssl_conf_sni(&s.conf, &State::on_sni, &s);
  if (tickets != nullptr) {
    mbedtls_ssl_conf_session_tickets_cb(&s.conf, mbedtls_ssl_ticket_write, mbedtls_ssl_ticket_parse,
                                        &tickets->state().ticket);
  }
}

TlsContext::~TlsContext() = default;

// ---- sessions ----

struct TlsSession::State {
  mbedtls_ssl_context ssl;
  State() { mbedtls_ssl_init(&ssl); }
  ~State() { mbedtls_ssl_free(&ssl); }

  static int send(void* self, const unsigned char* buf, size_t len) {
    auto* session = static_cast<TlsSession*>(self);
    session->out_.append(reinterpret_cast<const char*>(buf), len);
    return static_cast<int>(len);
  }
  static int recv(void* self, unsigned char* buf, size_t len) {
    auto* session = static_cast<TlsSession*>(self);
    size_t available = session->in_.size() - session->in_pos_;
    if (available == 0) return MBEDTLS_ERR_SSL_WANT_READ;
    size_t n = std::min(len, available);
    std::memcpy(buf, session->in_.data() + session->in_pos_, n);
    session->in_pos_ += n;
    if (session->in_pos_ == session->in_.size()) {
      session->in_.clear();
      session->in_pos_ = 0;
    }
    return static_cast<int>(n);
  }
};

TlsSession::TlsSession() : state_(std::make_unique<State>()) {}
TlsSession::~TlsSession() = default;

std::unique_ptr<TlsSession> TlsSession::create(const TlsContext& context) {
  std::unique_ptr<TlsSession> session(new TlsSession());
  if (mbedtls_ssl_setup(&session->state_->ssl, &context.state().conf) != 0) return nullptr;
  mbedtls_ssl_set_bio(&session->state_->ssl, session.get(), &State::send, &State::recv, nullptr);
  return session;
}

void TlsSession::feed(const char* data, size_t len) {
  if (in_pos_ > 0 && in_pos_ == in_.size()) {
    in_.clear();
    in_pos_ = 0;
  }
  in_.append(data, len);
}

bool TlsSession::has_buffered_input() const {
  return in_pos_ < in_.size() || mbedtls_ssl_get_bytes_avail(&state_->ssl) > 0 ||
         mbedtls_ssl_check_pending(&state_->ssl) != 0;
}

int TlsSession::map_error(int rc) {
  if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE) return kWantRead;
  if (rc == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) return kClosed;
  last_error_ = mbedtls_message(rc);
  return kFailed;
}

int TlsSession::handshake() {
  int rc = mbedtls_ssl_handshake(&state_->ssl);
  return rc == 0 ? 0 : map_error(rc);
}

int TlsSession::read(char* buf, size_t size) {
  int rc = mbedtls_ssl_read(&state_->ssl, reinterpret_cast<unsigned char*>(buf), size);
  if (rc > 0) return rc;
  if (rc == 0) return kClosed;
  return map_error(rc);
}

int TlsSession::write(const char* data, size_t len) {
  while (len > 0) {
    int rc = mbedtls_ssl_write(&state_->ssl, reinterpret_cast<const unsigned char*>(data), len);
    if (rc < 0) {
      last_error_ = mbedtls_message(rc);
      return kFailed;
    }
    data += rc;
    len -= static_cast<size_t>(rc);
  }
  return 0;
}

void TlsSession::close_notify() { mbedtls_ssl_close_notify(&state_->ssl); }

}  // namespace ks::server
