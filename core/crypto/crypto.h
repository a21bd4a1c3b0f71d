#pragma once
// The one seam over the crypto libraries: mbedTLS 2.28 for everything, and libcrypto (OpenSSL 3)
// for signing when the build has it (meson option `openssl`). Nothing outside core/crypto
// includes either library's headers.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"

namespace ks::crypto {

// ---- randomness -------------------------------------------------------------------------------

// Injected so that tests can be exact. Implementations must be thread-safe.
class Random {
 public:
  virtual ~Random() = default;
  virtual void fill(uint8_t* out, size_t n) = 0;
  // True for the system source: work that needs only unpredictable bytes, not these bytes (key
  // generation), may then draw them from the signing provider's own CSPRNG. A seeded stream says
  // false, so whatever it feeds stays exact in tests.
  virtual bool system_entropy() const { return false; }

  std::string bytes(size_t n);
  std::string hex(size_t n_chars);    // n_chars lower-case hex digits
  std::string alnum(size_t n_chars);  // [A-Za-z0-9], unbiased
  std::string token(size_t n_bytes);  // base64url of n_bytes random bytes
};

// CTR-DRBG seeded from the system entropy source; thread-safe.
std::unique_ptr<Random> system_random();
// Deterministic (for tests): a counter-mode stream derived from the seed. Not for production.
std::unique_ptr<Random> seeded_random(uint64_t seed);

// ---- encodings and digests ----------------------------------------------------------------------

std::string base64url_encode(std::string_view data);  // no padding
std::optional<std::string> base64url_decode(std::string_view text);
std::string base64_encode(std::string_view data);  // with padding
std::optional<std::string> base64_decode(std::string_view text);
std::string hex_encode(std::string_view data);
std::optional<std::string> hex_decode(std::string_view text);

std::string sha256(std::string_view data);  // 32 raw bytes
std::string hmac_sha256(std::string_view key, std::string_view data);
bool constant_time_equal(std::string_view a, std::string_view b);

// ---- authenticated encryption (secrets at rest)
// ---------------------------------------------------

// AES-256-GCM. key is 32 raw bytes. Output: 12-byte nonce || ciphertext || 16-byte tag.
std::string aead_seal(std::string_view key, std::string_view plaintext, Random& rng,
                      std::string_view aad = {});
std::optional<std::string> aead_open(std::string_view key, std::string_view sealed,
                                     std::string_view aad = {});

// ---- signing keys and JWS
// -------------------------------------------------------------------------

enum class Alg { RS256, ES256 };
// Which library signs: "openssl" (libcrypto, when the build found it) or "mbedtls".
std::string_view signing_provider();
std::string_view alg_name(Alg a);
std::optional<Alg> alg_from_name(std::string_view name);

class SigningKey {
 public:
  virtual ~SigningKey() = default;
  // RS256: RSA-2048, e=65537. ES256: P-256. CPU-heavy for RSA (about 75 ms): never on an event
  // loop. mbedTLS generates from rng, deterministically for a seeded rng; with libcrypto and the
  // system Random, libcrypto generates P-256 keys (it is faster there, and slower for RSA).
  static std::unique_ptr<SigningKey> generate(Alg alg, Random& rng);
  // PKCS#8 / PKCS#1 / SEC1 PEM as produced by private_pem().
  static std::unique_ptr<SigningKey> from_pem(std::string_view pem);

  virtual Alg alg() const = 0;
  virtual std::string private_pem() const = 0;
  // Public JWK: {kty, n, e} or {kty, crv, x, y}, plus kid, use=sig, alg.
  virtual Json public_jwk(std::string_view kid) const = 0;
  // Raw JWS signature (RS256: PKCS#1 v1.5 over SHA-256; ES256: 64-byte r||s). Thread-safe.
  virtual std::string sign(std::string_view signing_input, Random& rng) const = 0;
  virtual bool verify(std::string_view signing_input, std::string_view signature) const = 0;
};

// A verification key taken from someone else's JWK (upstream identity providers' JWKS).
class PublicKey {
 public:
  virtual ~PublicKey() = default;
  // {kty: RSA, n, e} (2048..8192 bits) → RS256; {kty: EC, crv: P-256, x, y} → ES256.
  // nullptr if the JWK is not a usable public signing key: another key type, curve or size,
  // "use" other than "sig", an "alg" other than the one above, malformed members, or an EC
  // point not on the curve.
  static std::unique_ptr<PublicKey> from_jwk(const Json& jwk);

  virtual Alg alg() const = 0;
  // Signature as in SigningKey::verify. Thread-safe.
  virtual bool verify(std::string_view signing_input, std::string_view signature) const = 0;
};

struct Jws {
  Json header;
  Json payload;
  std::string signing_input;  // base64url(header) "." base64url(payload)
  std::string signature;      // raw bytes
};

// Compact JWS: header {alg, typ, kid} plus any members of extra_header.
std::string jws_sign(const SigningKey& key, std::string_view kid, const Json& payload, Random& rng,
                     const Json& extra_header = Json::object());
// Splits and decodes a compact JWS; nullopt if it is not three base64url JSON parts.
// Does not verify: call key.verify(jws.signing_input, jws.signature).
std::optional<Jws> jws_parse(std::string_view token);

// ---- passwords ----------------------------------------------------------------------------------

struct PasswordParams {
  uint32_t t_cost = 2;  // OWASP: argon2id m=19 MiB, t=2, p=1
  uint32_t m_cost_kib = 19456;
  uint32_t parallelism = 1;
};
// argon2id, PHC string format. CPU-heavy: never on an event loop.
std::string password_hash(std::string_view password, Random& rng,
                          const PasswordParams& params = {});
bool password_verify(std::string_view encoded, std::string_view password);

// ---- X.509 (dev-mode TLS)
// ---------------------------------------------------------------------------

struct CertAndKey {
  std::string cert_pem;
  std::string key_pem;
};
// Self-signed certificate for the given DNS names / IPs (subjectAltName), valid for `days`.
CertAndKey self_signed_certificate(const std::vector<std::string>& dns_names,
                                   const std::vector<std::string>& ips, int days, Random& rng);

}  // namespace ks::crypto
