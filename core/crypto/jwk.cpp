// Public verification keys from JWKs (RFC 7517/7518): RSA from n/e, EC P-256 from x/y.
#include <mbedtls/bignum.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/md.h>
#include <mbedtls/rsa.h>

#include "core/crypto/crypto.h"

namespace ks::crypto {
namespace {

constexpr size_t kEcCoordLen = 32;
constexpr size_t kMinRsaBits = 2048;
constexpr size_t kMaxRsaBits = 8192;

// Each thread keeps its own P-256 group: mbedtls_ecdsa_verify() caches a precomputed table
// for the generator inside the group, so a shared group would be a data race.
struct ThreadGroup {
  ThreadGroup() {
    mbedtls_ecp_group_init(&grp);
    ok = mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1) == 0;
  }
  ~ThreadGroup() { mbedtls_ecp_group_free(&grp); }
  ThreadGroup(const ThreadGroup&) = delete;
  ThreadGroup& operator=(const ThreadGroup&) = delete;
  mbedtls_ecp_group grp;
  bool ok = false;
};

mbedtls_ecp_group* p256() {
  thread_local ThreadGroup g;
  return g.ok ? &g.grp : nullptr;
}

// The base64url-decoded string member `name`, or nullopt.
std::optional<std::string> b64_member(const Json& jwk, const char* name) {
  auto it = jwk.find(name);
  if (it == jwk.end() || !it->is_string()) return std::nullopt;
  auto raw = base64url_decode(it->get<std::string>());
  if (!raw || raw->empty()) return std::nullopt;
  return raw;
}

const unsigned char* bytes(const std::string& s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

class RsaPublicKey final : public PublicKey {
 public:
  RsaPublicKey() { mbedtls_rsa_init(&rsa_, MBEDTLS_RSA_PKCS_V15, 0); }
  ~RsaPublicKey() override { mbedtls_rsa_free(&rsa_); }
  RsaPublicKey(const RsaPublicKey&) = delete;
  RsaPublicKey& operator=(const RsaPublicKey&) = delete;

  bool load(const std::string& n, const std::string& e) {
    mbedtls_mpi mn;
    mbedtls_mpi_init(&mn);
    const bool read = mbedtls_mpi_read_binary(&mn, bytes(n), n.size()) == 0;
    const size_t bits = read ? mbedtls_mpi_bitlen(&mn) : 0;
    mbedtls_mpi_free(&mn);
    if (bits < kMinRsaBits || bits > kMaxRsaBits || e.size() > 8) return false;
    return mbedtls_rsa_import_raw(&rsa_, bytes(n), n.size(), nullptr, 0, nullptr, 0, nullptr, 0,
                                  bytes(e), e.size()) == 0 &&
           mbedtls_rsa_complete(&rsa_) == 0 && mbedtls_rsa_check_pubkey(&rsa_) == 0;
  }

  Alg alg() const override { return Alg::RS256; }

  bool verify(std::string_view signing_input, std::string_view signature) const override {
    if (signature.size() != mbedtls_rsa_get_len(&rsa_)) return false;
    const std::string hash = sha256(signing_input);
    return mbedtls_rsa_pkcs1_verify(&rsa_, nullptr, nullptr, MBEDTLS_RSA_PUBLIC, MBEDTLS_MD_SHA256,
                                    32, bytes(hash),
                                    reinterpret_cast<const unsigned char*>(signature.data())) == 0;
  }

 private:
  // Read-only after load(), except the lazily computed Montgomery constant, which mbedTLS
  // (built with MBEDTLS_THREADING_C) guards with the context's own mutex.
  mutable mbedtls_rsa_context rsa_;
};

class EcPublicKey final : public PublicKey {
 public:
  EcPublicKey() { mbedtls_ecp_point_init(&q_); }
  ~EcPublicKey() override { mbedtls_ecp_point_free(&q_); }
  EcPublicKey(const EcPublicKey&) = delete;
  EcPublicKey& operator=(const EcPublicKey&) = delete;

  bool load(const std::string& x, const std::string& y) {
    mbedtls_ecp_group* grp = p256();
    return grp && x.size() == kEcCoordLen && y.size() == kEcCoordLen &&
           mbedtls_mpi_read_binary(&q_.X, bytes(x), x.size()) == 0 &&
           mbedtls_mpi_read_binary(&q_.Y, bytes(y), y.size()) == 0 &&
           mbedtls_mpi_lset(&q_.Z, 1) == 0 && mbedtls_ecp_check_pubkey(grp, &q_) == 0;
  }

  Alg alg() const override { return Alg::ES256; }

  bool verify(std::string_view signing_input, std::string_view signature) const override {
    if (signature.size() != 2 * kEcCoordLen) return false;
    mbedtls_ecp_group* grp = p256();
    if (!grp) return false;
    const std::string hash = sha256(signing_input);
    const auto* sig = reinterpret_cast<const unsigned char*>(signature.data());
    mbedtls_mpi r, s;
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    const bool ok = mbedtls_mpi_read_binary(&r, sig, kEcCoordLen) == 0 &&
                    mbedtls_mpi_read_binary(&s, sig + kEcCoordLen, kEcCoordLen) == 0 &&
                    mbedtls_ecdsa_verify(grp, bytes(hash), hash.size(), &q_, &r, &s) == 0;
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    return ok;
  }

 private:
  mbedtls_ecp_point q_;  // read-only after load()
};

}  // namespace

std::unique_ptr<PublicKey> PublicKey::from_jwk(const Json& jwk) {
  if (!jwk.is_object()) return nullptr;
  auto str = [&](const char* name) -> std::optional<std::string> {
    auto it = jwk.find(name);
    if (it == jwk.end()) return std::string();
    if (!it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  const auto kty = str("kty"), use = str("use"), alg = str("alg");
  if (!kty || !use || !alg) return nullptr;
  if (!use->empty() && *use != "sig") return nullptr;
  try {
    if (*kty == "RSA") {
      if (!alg->empty() && *alg != "RS256") return nullptr;
      auto n = b64_member(jwk, "n"), e = b64_member(jwk, "e");
      if (!n || !e) return nullptr;
      auto key = std::make_unique<RsaPublicKey>();
      if (!key->load(*n, *e)) return nullptr;
      return key;
    }
    if (*kty == "EC") {
      if (!alg->empty() && *alg != "ES256") return nullptr;
      const auto crv = str("crv");
      if (!crv || *crv != "P-256") return nullptr;
      auto x = b64_member(jwk, "x"), y = b64_member(jwk, "y");
      if (!x || !y) return nullptr;
      auto key = std::make_unique<EcPublicKey>();
      if (!key->load(*x, *y)) return nullptr;
      return key;
    }
  } catch (const std::exception&) {
    return nullptr;
  }
  return nullptr;
}

}  // namespace ks::crypto
