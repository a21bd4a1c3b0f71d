/*
 * keystead.h — the stable C ABI of Keystead, a multi-tenant identity engine.
 *
 * Conventions
 *  - Every function is ks_<noun>_<verb> and returns int: 0 on success or a negative KS_E* code.
 *    Details of the last failure on the calling thread: ks_last_error() (never NULL).
 *  - Data crosses as UTF-8 JSON strings. Strings the library returns are owned by the caller
 *    and released with ks_free().
 *  - Output parameters come first.
 *  - No C++ exception or type crosses this boundary.
 *  - Thread safety: one ks_engine may be used from many threads at once. ks_engine_close must
 *    not race with other calls on the same engine.
 *
 * The ABI grows only by adding functions; shipped signatures never change. KS_ABI_VERSION is
 * bumped when functions are added; ks_abi_version() reports the library's value at run time.
 */
#ifndef KEYSTEAD_H
#define KEYSTEAD_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KS_ABI_VERSION 2

#if defined(__GNUC__)
#define KS_API __attribute__((visibility("default")))
#else
#define KS_API
#endif

/* Error codes (negative). */
#define KS_OK 0
#define KS_ERROR -1      /* generic failure; see ks_last_error() */
#define KS_EINVALID -2   /* invalid argument or malformed JSON */
#define KS_ENOTFOUND -3  /* no such entity */
#define KS_EEXISTS -4    /* entity already exists */
#define KS_EAUTH -5      /* authentication failed */
#define KS_EFORBIDDEN -6 /* not allowed */
#define KS_EUSER -7      /* reserved for errors raised by host callbacks */

typedef struct ks_engine ks_engine;

/* Library version string, e.g. "0.1.0". Static storage; do not free. */
KS_API const char* ks_version(void);
/* KS_ABI_VERSION of the loaded library. */
KS_API int ks_abi_version(void);
/* Message of the last failure on this thread ("" if none). Valid until the next ks_ call on
 * this thread. Never NULL. */
KS_API const char* ks_last_error(void);
/* Frees a string returned by the library. NULL is allowed. */
KS_API void ks_free(void* p);

/* Opens an engine. config_json is a JSON object of settings named like the KEYSTEAD_*
 * environment variables without the prefix, in lower case (e.g. {"data_dir":"./data",
 * "mode":"dev","public_url":"https://id.example.com"}); unset settings come from the
 * environment, then the defaults. NULL or "" means "{}". */
KS_API int ks_engine_open(ks_engine** out, const char* config_json);
/* Closes an engine. NULL is allowed. */
KS_API void ks_engine_close(ks_engine* engine);

/* Handles one HTTP request, so a host with its own web server can serve all of Keystead.
 * request_json: {"method":"GET","path":"/t/acme/.well-known/openid-configuration",
 *   "query":"a=1","headers":{"host":"id.example.com"} or [["host","id.example.com"]],
 *   "body":"...", "remote_addr":"203.0.113.7", "secure":true}
 * *out_response_json: {"status":200,"headers":[["content-type","application/json"]],
 *   "body":"..."} — free it with ks_free(). */
KS_API int ks_engine_handle(char** out_response_json, ks_engine* engine, const char* request_json);

/* Runs a Management API v2 call with system authority (no token), through the same handlers,
 * validation and errors as HTTP: `tenant` is a tenant id (NULL or "" for the control plane),
 * `method` "GET", "POST", "PATCH", "PUT" or "DELETE", `path` below /api/v2 with an optional
 * query ("/users?per_page=10"), `body_json` the request body (NULL for none).
 * On a 2xx answer returns KS_OK and sets *out_json to the response body ("" for 204). Otherwise
 * returns the code for the status (400 KS_EINVALID, 401 KS_EAUTH, 403 KS_EFORBIDDEN,
 * 404 KS_ENOTFOUND, 409 KS_EEXISTS, else KS_ERROR), *out_json is NULL, and ks_last_error() holds
 * the Auth0-shaped error body ({"statusCode":…,"error":…,"message":…,"errorCode":…}).
 * Since ABI version 2. */
KS_API int ks_engine_manage(char** out_json, ks_engine* engine, const char* tenant,
                            const char* method, const char* path, const char* body_json);

/* Issues tokens through a tenant's token endpoint (tenant NULL or "": the control plane), as an
 * HTTP client would, without HTTP. request_json holds the token request's parameters (strings),
 * e.g. {"grant_type":"client_credentials","client_id":"…","client_secret":"…","audience":"…"}.
 * Every grant of POST /oauth/token works, and one more, for a user the host has authenticated
 * itself: {"grant_type":"urn:keystead:grant-type:user","client_id":"…","user_id":"…",
 * "audience":"…","scope":"openid …","organization":"<id or name>"} (client_id and user_id
 * required; no secret or password; the user must exist and not be blocked, and be a member of
 * the organization; post-login hooks run). The HTTP token endpoint refuses that grant.
 * On success *out_json is the token response ({"access_token":…,"expires_in":…,…}); otherwise the
 * code follows the status (400 KS_EINVALID, 401 KS_EAUTH, 403 KS_EFORBIDDEN) and ks_last_error()
 * holds the OAuth error body ({"error":…,"error_description":…}). Since ABI version 2. */
KS_API int ks_token_issue(char** out_json, ks_engine* engine, const char* tenant,
                          const char* request_json);

/* Verifies a JWT issued by one of the engine's tenants: its signature against the tenant's
 * published keys, its issuer, its expiry and, when audience is neither NULL nor "", that "aud"
 * contains it. tenant NULL or "": any tenant; otherwise the token must be that tenant's. On
 * success *out_claims_json is the token's claims object; an invalid token is KS_EAUTH with the
 * reason in ks_last_error(). Since ABI version 2. */
KS_API int ks_token_verify(char** out_claims_json, ks_engine* engine, const char* token,
                           const char* tenant, const char* audience);

/* Checks a database user's password in a tenant (NULL or "": the control plane); connection
 * NULL or "" is "Username-Password-Authentication". KS_OK when it matches, and then, if
 * out_user_id is not NULL, *out_user_id is the user's id (free it with ks_free); KS_EAUTH for an
 * unknown user or a wrong password (the same message for both); KS_EFORBIDDEN for a blocked
 * user. Hashing is deliberately slow (argon2id): call it off latency-critical threads. Failed
 * checks do not count toward the tenant's brute-force protection: a host exposing this to the
 * public must limit attempts itself. Since ABI version 2. */
KS_API int ks_password_check(char** out_user_id, ks_engine* engine, const char* tenant,
                             const char* connection, const char* email, const char* password);

#ifdef __cplusplus
}
#endif

#endif /* KEYSTEAD_H */
