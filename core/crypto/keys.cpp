// Signing keys (RS256: RSA-2048 PKCS#1 v1.5; ES256: ECDSA P-256 with raw r||s signatures).
#include <mbedtls/bignum.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/md.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/rsa.h>

#include <cstdio>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "core/crypto/crypto.h"
#include "core/crypto/mbed.h"
#include "core/crypto/providers.h"

// RSA verification shares one public context between threads and relies on mbedTLS locking the
// lazily computed Montgomery constant inside mbedtls_rsa_public().
#if !defined(MBEDTLS_THREADING_C)
#error "keystead requires mbedTLS built with MBEDTLS_THREADING_C"
#endif

namespace ks::crypto {

namespace {

using mbed::Mpi;

constexpr size_t kEcCoordLen = 32;
constexpr unsigned kMinRsaBits = 2048;
constexpr unsigned kMaxRsaBits = 8192;

int rng_adapter(void* ctx, unsigned char* out, size_t n) {
  try {
    static_cast<Random*>(ctx)->fill(out, n);
    return 0;
  } catch (...) {
    return MBEDTLS_ERR_ENTROPY_SOURCE_FAILED;
  }
}

std::string err(const char* what, int rc) {
  return std::string("crypto: ") + what + " (mbedtls error -0x" + [rc] {
    char buf[16];
    std::snprintf(buf, sizeof(buf), "%04x", static_cast<unsigned>(-rc));
    return std::string(buf);
  }() + ")";
}

// Big-endian unsigned bytes; `len` 0 means minimal length.
std::string mpi_bytes(const mbedtls_mpi* v, size_t len = 0) {
  if (len == 0) len = mbedtls_mpi_size(v);
  std::string out(len, '\0');
  if (mbedtls_mpi_write_binary(v, reinterpret_cast<unsigned char*>(out.data()), len) != 0) {
    throw std::runtime_error("crypto: big number does not fit");
  }
  return out;
}

// Each thread keeps its own P-256 group for verification: mbedtls_ecdsa_verify() caches a
// precomputed table for the generator inside the group, so a shared group would be a data race.
struct ThreadP256 {
  ThreadP256() {
    mbedtls_ecp_group_init(&grp);
    ok = mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1) == 0;
  }
  ~ThreadP256() { mbedtls_ecp_group_free(&grp); }
  ThreadP256(const ThreadP256&) = delete;
  ThreadP256& operator=(const ThreadP256&) = delete;
  mbedtls_ecp_group grp;
  bool ok = false;
};

class PkKey final : public SigningKey {
 public:
  PkKey() {
    mbedtls_pk_init(&priv_);
    mbedtls_pk_init(&pub_);
  }
  ~PkKey() override {
    mbedtls_pk_free(&pub_);
    mbedtls_pk_free(&priv_);
  }
  PkKey(const PkKey&) = delete;
  PkKey& operator=(const PkKey&) = delete;

  mbedtls_pk_context* priv() { return &priv_; }

  // Validates the private key loaded into priv_ and derives the public context from it.
  // Throws std::invalid_argument for unsupported or inconsistent keys.
  void finish() {
    mbedtls_pk_type_t type = mbedtls_pk_get_type(&priv_);
    if (type == MBEDTLS_PK_RSA) {
      const mbedtls_rsa_context* rsa = mbedtls_pk_rsa(priv_);
      size_t bits = mbedtls_pk_get_bitlen(&priv_);
      if (bits < kMinRsaBits || bits > kMaxRsaBits) {
        throw std::invalid_argument("crypto: RSA key size must be 2048..8192 bits");
      }
      if (mbedtls_rsa_check_privkey(rsa) != 0) {
        throw std::invalid_argument("crypto: inconsistent RSA private key");
      }
      alg_ = Alg::RS256;
    } else if (type == MBEDTLS_PK_ECKEY) {
      const mbedtls_ecp_keypair* ec = mbedtls_pk_ec(priv_);
      if (ec->grp.id != MBEDTLS_ECP_DP_SECP256R1) {
        throw std::invalid_argument("crypto: EC keys must be on P-256");
      }
      if (mbedtls_ecp_check_privkey(&ec->grp, &ec->d) != 0 ||
          mbedtls_ecp_check_pubkey(&ec->grp, &ec->Q) != 0 ||
          mbedtls_ecp_check_pub_priv(ec, ec) != 0) {
        throw std::invalid_argument("crypto: inconsistent EC private key");
      }
      alg_ = Alg::ES256;
    } else {
      throw std::invalid_argument("crypto: unsupported key type");
    }

    std::vector<unsigned char> der(4096);
    int len = mbedtls_pk_write_pubkey_der(&priv_, der.data(), der.size());
    if (len <= 0) throw std::runtime_error(err("cannot write public key", len));
    int rc =
        mbedtls_pk_parse_public_key(&pub_, der.data() + der.size() - len, static_cast<size_t>(len));
    if (rc != 0) throw std::runtime_error(err("cannot load public key", rc));
  }

  Alg alg() const override { return alg_; }

  std::string private_pem() const override {
    std::vector<unsigned char> buf(16384);
    int rc;
    {
      std::lock_guard<std::mutex> lock(mu_);
      rc = mbedtls_pk_write_key_pem(&priv_, buf.data(), buf.size());
    }
    if (rc != 0) {
      mbedtls_platform_zeroize(buf.data(), buf.size());
      throw std::runtime_error(err("cannot write private key", rc));
    }
    std::string out(reinterpret_cast<const char*>(buf.data()));
    mbedtls_platform_zeroize(buf.data(), buf.size());
    return out;
  }

  Json public_jwk(std::string_view kid) const override {
    Json jwk = Json::object();
    if (alg_ == Alg::RS256) {
      const mbedtls_rsa_context* rsa = mbedtls_pk_rsa(pub_);
      Mpi n, e;
      if (mbedtls_rsa_export(rsa, n.get(), nullptr, nullptr, nullptr, e.get()) != 0) {
        throw std::runtime_error("crypto: cannot export RSA public key");
      }
      jwk["kty"] = "RSA";
      jwk["n"] = base64url_encode(mpi_bytes(n.get()));
      jwk["e"] = base64url_encode(mpi_bytes(e.get()));
    } else {
      const mbedtls_ecp_keypair* ec = mbedtls_pk_ec(pub_);
      jwk["kty"] = "EC";
      jwk["crv"] = "P-256";
      jwk["x"] = base64url_encode(mpi_bytes(&ec->Q.X, kEcCoordLen));
      jwk["y"] = base64url_encode(mpi_bytes(&ec->Q.Y, kEcCoordLen));
    }
    jwk["kid"] = std::string(kid);
    jwk["use"] = "sig";
    jwk["alg"] = std::string(alg_name(alg_));
    return jwk;
  }

  std::string sign(std::string_view signing_input, Random& rng) const override {
    std::string hash = sha256(signing_input);
    const auto* h = reinterpret_cast<const unsigned char*>(hash.data());
    std::lock_guard<std::mutex> lock(mu_);
    if (alg_ == Alg::RS256) {
      mbedtls_rsa_context* rsa = mbedtls_pk_rsa(priv_);
      std::string sig(mbedtls_rsa_get_len(rsa), '\0');
      int rc =
          mbedtls_rsa_pkcs1_sign(rsa, rng_adapter, &rng, MBEDTLS_RSA_PRIVATE, MBEDTLS_MD_SHA256, 32,
                                 h, reinterpret_cast<unsigned char*>(sig.data()));
      if (rc != 0) throw std::runtime_error(err("RS256 signing failed", rc));
      return sig;
    }
    mbedtls_ecp_keypair* ec = mbedtls_pk_ec(priv_);
    Mpi r, s;
    // Deterministic nonce (RFC 6979); the RNG only blinds the computation.
    int rc = mbedtls_ecdsa_sign_det_ext(&ec->grp, r.get(), s.get(), &ec->d, h, 32,
                                        MBEDTLS_MD_SHA256, rng_adapter, &rng);
    if (rc != 0) throw std::runtime_error(err("ES256 signing failed", rc));
    return mpi_bytes(r.get(), kEcCoordLen) + mpi_bytes(s.get(), kEcCoordLen);
  }

  bool verify(std::string_view signing_input, std::string_view signature) const override {
    try {
      std::string hash = sha256(signing_input);
      const auto* h = reinterpret_cast<const unsigned char*>(hash.data());
      const auto* sig = reinterpret_cast<const unsigned char*>(signature.data());
      if (alg_ == Alg::RS256) {
        mbedtls_rsa_context* rsa = mbedtls_pk_rsa(pub_);
        if (signature.size() != mbedtls_rsa_get_len(rsa)) return false;
        return mbedtls_rsa_pkcs1_verify(rsa, nullptr, nullptr, MBEDTLS_RSA_PUBLIC,
                                        MBEDTLS_MD_SHA256, 32, h, sig) == 0;
      }
      if (signature.size() != 2 * kEcCoordLen) return false;
      thread_local ThreadP256 p256;
      if (!p256.ok) return false;
      Mpi r, s;
      if (mbedtls_mpi_read_binary(r.get(), sig, kEcCoordLen) != 0 ||
          mbedtls_mpi_read_binary(s.get(), sig + kEcCoordLen, kEcCoordLen) != 0) {
        return false;
      }
      const mbedtls_ecp_keypair* ec = mbedtls_pk_ec(pub_);
      return mbedtls_ecdsa_verify(&p256.grp, h, 32, &ec->Q, r.get(), s.get()) == 0;
    } catch (...) {
      return false;
    }
  }

 private:
  Alg alg_ = Alg::RS256;
  mutable std::mutex mu_;  // guards priv_ (blinding state changes on every sign)
  mutable mbedtls_pk_context priv_;
  mutable mbedtls_pk_context pub_;  // read-only after finish(), except RSA's internal lock
};

}  // namespace

std::string_view alg_name(Alg a) {
  switch (a) {
    case Alg::RS256:
      return "RS256";
    case Alg::ES256:
      return "ES256";
  }
  return "";
}

std::optional<Alg> alg_from_name(std::string_view name) {
  if (name == "RS256") return Alg::RS256;
  if (name == "ES256") return Alg::ES256;
  return std::nullopt;
}

std::string_view signing_provider() {
#if defined(KS_WITH_OPENSSL)
  return "openssl";
#else
  return "mbedtls";
#endif
}

std::unique_ptr<SigningKey> SigningKey::generate(Alg alg, Random& rng) {
#if defined(KS_WITH_OPENSSL)
  // Measured (docs/performance.md): libcrypto makes P-256 keys faster (0.8 vs 1.3 ms) but RSA-2048
  // keys slower (OpenSSL 3.0's prime tests: 146 vs 75 ms), so each takes the faster generator.
  if (alg == Alg::ES256 && rng.system_entropy()) return openssl_generate(alg);
  return openssl_signing_key(mbedtls_generate(alg, rng));
#else
  return mbedtls_generate(alg, rng);
#endif
}

std::unique_ptr<SigningKey> SigningKey::from_pem(std::string_view pem) {
#if defined(KS_WITH_OPENSSL)
  return openssl_signing_key(mbedtls_from_pem(pem));
#else
  return mbedtls_from_pem(pem);
#endif
}

std::unique_ptr<SigningKey> mbedtls_generate(Alg alg, Random& rng) {
  auto key = std::make_unique<PkKey>();
  mbedtls_pk_context* pk = key->priv();
  if (alg == Alg::RS256) {
    int rc = mbedtls_pk_setup(pk, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA));
    if (rc != 0) throw std::runtime_error(err("pk setup failed", rc));
    rc = mbedtls_rsa_gen_key(mbedtls_pk_rsa(*pk), rng_adapter, &rng, 2048, 65537);
    if (rc != 0) throw std::runtime_error(err("RSA key generation failed", rc));
  } else {
    int rc = mbedtls_pk_setup(pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
    if (rc != 0) throw std::runtime_error(err("pk setup failed", rc));
    rc = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(*pk), rng_adapter, &rng);
    if (rc != 0) throw std::runtime_error(err("EC key generation failed", rc));
  }
  try {
    key->finish();
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(e.what());  // a freshly generated key must be valid
  }
  return key;
}

std::unique_ptr<SigningKey> mbedtls_from_pem(std::string_view pem) {
  if (pem.find("-----BEGIN") == std::string_view::npos) {
    throw std::invalid_argument("crypto: not a PEM private key");
  }
  std::string buf(pem);  // mbedtls wants the PEM NUL-terminated, with the NUL counted
  auto key = std::make_unique<PkKey>();
  int rc = mbedtls_pk_parse_key(key->priv(), reinterpret_cast<const unsigned char*>(buf.c_str()),
                                buf.size() + 1, nullptr, 0);
  mbedtls_platform_zeroize(buf.data(), buf.size());
  if (rc != 0) throw std::invalid_argument(err("cannot parse private key PEM", rc));
  key->finish();
  return key;
}

}  // namespace ks::crypto
