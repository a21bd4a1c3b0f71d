#pragma once
// Internal to core/crypto: the signing providers behind SigningKey. mbedTLS is complete on its
// own; with libcrypto (KS_WITH_OPENSSL), keys sign and verify through it (and it generates P-256
// keys from the system's entropy), while mbedTLS still parses, validates and exports them.
#include <memory>
#include <string_view>

#include "core/crypto/crypto.h"

namespace ks::crypto {

// mbedTLS keys (keys.cpp).
std::unique_ptr<SigningKey> mbedtls_generate(Alg alg, Random& rng);
std::unique_ptr<SigningKey> mbedtls_from_pem(std::string_view pem);

#if defined(KS_WITH_OPENSSL)
// The same key, signing and verifying with libcrypto (openssl_keys.cpp).
std::unique_ptr<SigningKey> openssl_signing_key(std::unique_ptr<SigningKey> key);
// A new key from libcrypto's generator and CSPRNG, wrapped the same way.
std::unique_ptr<SigningKey> openssl_generate(Alg alg);
#endif

}  // namespace ks::crypto
