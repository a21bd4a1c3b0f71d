// The libcrypto (OpenSSL 3) signing provider: RS256 and ES256 signatures and their verification,
// several times faster than mbedTLS 2.28 (DESIGN.md "Performance"). Built when meson finds
// libcrypto (option `openssl`, auto). A key is still parsed, validated and exported (PEM, JWK) by
// the mbedTLS key it wraps, so both providers read and write the same stored keys. libcrypto
// generates P-256 keys when the injected Random is the system's; a seeded Random (tests) keeps
// mbedTLS generating from it, so those keys stay exact.
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <stdexcept>

#include "core/crypto/providers.h"

namespace ks::crypto {
namespace {

constexpr size_t kEcCoordLen = 32;

std::string ossl_error(const char* what) {
  char buf[256] = {0};
  ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
  ERR_clear_error();
  return std::string("crypto: ") + what + " (" + buf + ")";
}

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct SigFree {
  void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;
using EcSig = std::unique_ptr<ECDSA_SIG, SigFree>;

Pkey read_private_pem(std::string_view pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  if (!bio) throw std::runtime_error(ossl_error("cannot read key"));
  Pkey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) throw std::invalid_argument(ossl_error("cannot parse private key PEM"));
  return key;
}

// ECDSA's DER signature → JWS's 64-byte r||s, and back.
std::optional<std::string> der_to_raw(const unsigned char* der, size_t len) {
  EcSig sig(d2i_ECDSA_SIG(nullptr, &der, static_cast<long>(len)));
  if (!sig) return std::nullopt;
  const BIGNUM *r = nullptr, *s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  std::string out(2 * kEcCoordLen, '\0');
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  if (BN_bn2binpad(r, p, kEcCoordLen) < 0 || BN_bn2binpad(s, p + kEcCoordLen, kEcCoordLen) < 0)
    return std::nullopt;
  return out;
}

std::optional<std::string> raw_to_der(std::string_view raw) {
  if (raw.size() != 2 * kEcCoordLen) return std::nullopt;
  const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
  EcSig sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(p, kEcCoordLen, nullptr);
  BIGNUM* s = BN_bin2bn(p + kEcCoordLen, kEcCoordLen, nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return std::nullopt;
  }
  unsigned char* der = nullptr;
  const int len = i2d_ECDSA_SIG(sig.get(), &der);
  if (len <= 0) return std::nullopt;
  std::string out(reinterpret_cast<const char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

class OpensslKey final : public SigningKey {
 public:
  explicit OpensslKey(std::unique_ptr<SigningKey> base)
      : base_(std::move(base)), pkey_(read_private_pem(base_->private_pem())) {}
  OpensslKey(std::unique_ptr<SigningKey> base, Pkey pkey)
      : base_(std::move(base)), pkey_(std::move(pkey)) {}

  Alg alg() const override { return base_->alg(); }
  std::string private_pem() const override { return base_->private_pem(); }
  Json public_jwk(std::string_view kid) const override { return base_->public_jwk(kid); }

  // EVP_PKEY is safe to share between threads for signing and verifying; each call has its own
  // EVP_MD_CTX. OpenSSL draws ECDSA nonces and RSA blinding from its own DRBG, not rng.
  std::string sign(std::string_view signing_input, Random&) const override {
    MdCtx ctx(EVP_MD_CTX_new());
    size_t len = 0;
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pkey_.get()) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &len,
                       reinterpret_cast<const unsigned char*>(signing_input.data()),
                       signing_input.size()) != 1)
      throw std::runtime_error(ossl_error("signing failed"));
    std::string sig(len, '\0');
    auto* out = reinterpret_cast<unsigned char*>(sig.data());
    if (EVP_DigestSign(ctx.get(), out, &len,
                       reinterpret_cast<const unsigned char*>(signing_input.data()),
                       signing_input.size()) != 1)
      throw std::runtime_error(ossl_error("signing failed"));
    sig.resize(len);
    if (alg() == Alg::RS256) return sig;
    auto raw = der_to_raw(out, len);
    if (!raw) throw std::runtime_error("crypto: malformed ECDSA signature");
    return *raw;
  }

  bool verify(std::string_view signing_input, std::string_view signature) const override {
    std::string der;
    if (alg() == Alg::ES256) {
      auto d = raw_to_der(signature);
      if (!d) return false;
      der = std::move(*d);
      signature = der;
    }
    MdCtx ctx(EVP_MD_CTX_new());
    const bool ok =
        ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pkey_.get()) == 1 &&
        EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                         signature.size(),
                         reinterpret_cast<const unsigned char*>(signing_input.data()),
                         signing_input.size()) == 1;
    ERR_clear_error();
    return ok;
  }

 private:
  std::unique_ptr<SigningKey> base_;
  Pkey pkey_;
};

}  // namespace

std::unique_ptr<SigningKey> openssl_signing_key(std::unique_ptr<SigningKey> key) {
  return std::make_unique<OpensslKey>(std::move(key));
}

std::unique_ptr<SigningKey> openssl_generate(Alg alg) {
  Pkey pkey(alg == Alg::RS256 ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048})
                              : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!pkey) throw std::runtime_error(ossl_error("key generation failed"));
  // PKCS#8 PEM, handed to the mbedTLS key that parses, validates and exports it.
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), pkey.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
    throw std::runtime_error(ossl_error("cannot write generated key"));
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  std::string pem(data, static_cast<size_t>(len));
  std::unique_ptr<SigningKey> base;
  try {
    base = mbedtls_from_pem(pem);
  } catch (const std::invalid_argument& e) {
    OPENSSL_cleanse(pem.data(), pem.size());
    throw std::runtime_error(e.what());  // a freshly generated key must be valid
  }
  OPENSSL_cleanse(pem.data(), pem.size());
  return std::make_unique<OpensslKey>(std::move(base), std::move(pkey));
}

}  // namespace ks::crypto
