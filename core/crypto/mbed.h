#pragma once
// Internal to core/crypto: RAII for mbedTLS contexts, one template instead of a class per type.
#include <mbedtls/bignum.h>
#include <mbedtls/gcm.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

namespace ks::crypto::mbed {

template <class T, void (*Init)(T*), void (*Free)(T*)>
class Context {
 public:
  Context() { Init(&v_); }
  ~Context() { Free(&v_); }
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  T* get() { return &v_; }

 private:
  T v_;
};

using Mpi = Context<mbedtls_mpi, mbedtls_mpi_init, mbedtls_mpi_free>;
using Gcm = Context<mbedtls_gcm_context, mbedtls_gcm_init, mbedtls_gcm_free>;
using Pk = Context<mbedtls_pk_context, mbedtls_pk_init, mbedtls_pk_free>;
using CrtWriter =
    Context<mbedtls_x509write_cert, mbedtls_x509write_crt_init, mbedtls_x509write_crt_free>;

}  // namespace ks::crypto::mbed
