/* Exercises the C ABI using only keystead.h, as a C host would. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keystead.h"

static int failures = 0;
static int passed = 0;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (cond) {                                                                \
      ++passed;                                                                \
    } else {                                                                   \
      ++failures;                                                              \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                          \
  } while (0)

/* The string value of "name" in a flat JSON text (enough for ids and secrets), or "". */
static void json_string(char* out, size_t size, const char* json, const char* name) {
  char key[64];
  snprintf(key, sizeof key, "\"%s\":\"", name);
  const char* p = json ? strstr(json, key) : NULL;
  out[0] = '\0';
  if (!p) return;
  p += strlen(key);
  size_t n = 0;
  while (p[n] && p[n] != '"' && n + 1 < size) ++n;
  memcpy(out, p, n);
  out[n] = '\0';
}

int main(int argc, char** argv) {
  const char* dir = argc > 1 ? argv[1] : "abi-test-data";
  char config[1024];
  snprintf(config, sizeof config,
           "{\"data_dir\":\"%s\",\"mode\":\"dev\",\"public_url\":\"https://id.example.com\","
           "\"master_key\":\"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\"}",
           dir);

  CHECK(strlen(ks_version()) > 0);
  CHECK(ks_abi_version() == KS_ABI_VERSION);
  CHECK(ks_last_error() != NULL);

  ks_engine* engine = NULL;
  CHECK(ks_engine_open(&engine, "{not json") == KS_EINVALID);
  CHECK(engine == NULL);
  CHECK(strlen(ks_last_error()) > 0);
  CHECK(ks_engine_open(&engine, "{\"no_such_setting\":1}") == KS_EINVALID);
  CHECK(strstr(ks_last_error(), "no_such_setting") != NULL);

  int rc = ks_engine_open(&engine, config);
  CHECK(rc == KS_OK);
  if (rc != KS_OK) {
    fprintf(stderr, "open failed: %s\n", ks_last_error());
    return 1;
  }

  char* response = NULL;
  CHECK(ks_engine_handle(&response, engine,
                         "{\"method\":\"GET\",\"path\":\"/.well-known/openid-configuration\","
                         "\"headers\":{\"host\":\"id.example.com\"},\"secure\":true}") == KS_OK);
  CHECK(response != NULL);
  if (response) {
    CHECK(strstr(response, "\"status\":200") != NULL);
    CHECK(strstr(response, "https://id.example.com/oauth/token") != NULL);
    ks_free(response);
  }

  response = NULL;
  CHECK(ks_engine_handle(&response, engine, "{\"method\":\"GET\",\"path\":\"/t/nope/x\"}") ==
        KS_OK);
  if (response) {
    CHECK(strstr(response, "\"status\":404") != NULL);
    ks_free(response);
  }

  response = NULL;
  CHECK(ks_engine_handle(&response, engine, "[1,2]") == KS_EINVALID);
  CHECK(response == NULL);
  CHECK(ks_engine_handle(NULL, engine, "{}") == KS_EINVALID);

  /* Management calls: the same validation and errors as the HTTP API. */
  char* out = NULL;
  CHECK(ks_engine_manage(&out, engine, NULL, "POST", "/tenants",
                         "{\"id\":\"capi-acme\",\"friendly_name\":\"Acme\"}") == KS_OK);
  CHECK(out != NULL && strstr(out, "\"id\":\"capi-acme\"") != NULL);
  ks_free(out);
  out = NULL;
  CHECK(ks_engine_manage(&out, engine, "", "POST", "/tenants", "{\"id\":\"capi-acme\"}") ==
        KS_EEXISTS);
  CHECK(out == NULL);
  CHECK(strstr(ks_last_error(), "\"statusCode\":409") != NULL);
  CHECK(ks_engine_manage(&out, engine, "capi-acme", "POST", "/users",
                         "{\"email\":\"ann@example.com\",\"password\":\"Correct-Horse-9\","
                         "\"connection\":\"Username-Password-Authentication\"}") == KS_OK);
  ks_free(out);
  out = NULL;
  CHECK(ks_engine_manage(&out, engine, "capi-acme", "GET", "/users?email=ann%40example.com",
                         NULL) == KS_OK);
  CHECK(out != NULL && strstr(out, "ann@example.com") != NULL);
  ks_free(out);
  out = NULL;
  CHECK(ks_engine_manage(&out, engine, "capi-acme", "GET", "/users", NULL) == KS_OK);
  CHECK(out != NULL && strstr(out, "ann@example.com") != NULL);
  ks_free(out);
  out = NULL;
  CHECK(ks_engine_manage(&out, engine, "capi-acme", "POST", "/users", "{\"email\":5}") ==
        KS_EINVALID);
  CHECK(strstr(ks_last_error(), "invalid_body") != NULL);
  CHECK(ks_engine_manage(&out, engine, "capi-acme", "GET", "/roles/rol_nope", NULL) ==
        KS_ENOTFOUND);
  CHECK(ks_engine_manage(&out, engine, "no-such-tenant", "GET", "/users", NULL) == KS_ENOTFOUND);
  CHECK(ks_engine_manage(&out, engine, "capi-acme", "POST", "/users", "{oops") == KS_EINVALID);
  CHECK(ks_engine_manage(&out, engine, "capi-acme", "POST", "/hooks",
                         "{\"trigger_id\":\"post-login\",\"code\":\"x = = 1\"}") == KS_EINVALID);
  CHECK(strstr(ks_last_error(), ":1:") != NULL); /* the Lua runtime is linked in */
  CHECK(ks_engine_manage(&out, engine, "capi-acme", "DELETE", "/tenants/capi-acme", NULL) ==
        KS_ENOTFOUND); /* the Tenants API lives on the control plane */
  /* Passwords: ann's, from the user created above. */
  char* user_id = NULL;
  CHECK(ks_password_check(&user_id, engine, "capi-acme", NULL, "Ann@Example.com",
                          "Correct-Horse-9") == KS_OK);
  CHECK(user_id != NULL && strncmp(user_id, "auth0|", 6) == 0);
  char ann[128];
  snprintf(ann, sizeof ann, "%s", user_id ? user_id : "");
  ks_free(user_id);
  CHECK(ks_password_check(NULL, engine, "capi-acme", "Username-Password-Authentication",
                          "ann@example.com", "Correct-Horse-9") == KS_OK);
  user_id = NULL;
  CHECK(ks_password_check(&user_id, engine, "capi-acme", NULL, "ann@example.com", "wrong") ==
        KS_EAUTH);
  CHECK(user_id == NULL);
  CHECK(strcmp(ks_last_error(), "Wrong email or password.") == 0);
  CHECK(ks_password_check(NULL, engine, "capi-acme", NULL, "bob@example.com", "Correct-Horse-9") ==
        KS_EAUTH);
  CHECK(strcmp(ks_last_error(), "Wrong email or password.") == 0);
  CHECK(ks_password_check(NULL, engine, NULL, NULL, "ann@example.com", "Correct-Horse-9") ==
        KS_EAUTH); /* another tenant's user */
  CHECK(ks_password_check(NULL, engine, "capi-acme", NULL, NULL, "x") == KS_EINVALID);

  /* Tokens: a client_credentials token of the tenant, issued and verified without HTTP. */
  char body[512], client_id[128], secret[128], token[4096];
  CHECK(ks_engine_manage(&out, engine, "capi-acme", "POST", "/resource-servers",
                         "{\"identifier\":\"https://api.capi.test\",\"name\":\"API\"}") == KS_OK);
  ks_free(out);
  out = NULL;
  CHECK(ks_engine_manage(&out, engine, "capi-acme", "POST", "/clients",
                         "{\"name\":\"svc\",\"app_type\":\"non_interactive\"}") == KS_OK);
  json_string(client_id, sizeof client_id, out, "client_id");
  json_string(secret, sizeof secret, out, "client_secret");
  ks_free(out);
  out = NULL;
  CHECK(strlen(client_id) > 0 && strlen(secret) > 0);
  snprintf(body, sizeof body,
           "{\"client_id\":\"%s\",\"audience\":\"https://api.capi.test\",\"scope\":[]}", client_id);
  CHECK(ks_engine_manage(&out, engine, "capi-acme", "POST", "/client-grants", body) == KS_OK);
  ks_free(out);
  out = NULL;
  snprintf(body, sizeof body,
           "{\"grant_type\":\"client_credentials\",\"client_id\":\"%s\","
           "\"client_secret\":\"%s\",\"audience\":\"https://api.capi.test\"}",
           client_id, secret);
  CHECK(ks_token_issue(&out, engine, "capi-acme", body) == KS_OK);
  json_string(token, sizeof token, out, "access_token");
  ks_free(out);
  out = NULL;
  CHECK(strlen(token) > 100);
  CHECK(ks_token_verify(&out, engine, token, "capi-acme", "https://api.capi.test") == KS_OK);
  CHECK(out != NULL && strstr(out, "\"tenant_id\":\"capi-acme\"") != NULL);
  CHECK(out != NULL && strstr(out, "\"iss\":\"https://id.example.com/t/capi-acme/\"") != NULL);
  ks_free(out);
  out = NULL;
  CHECK(ks_token_verify(&out, engine, token, NULL, NULL) == KS_OK);
  ks_free(out);
  out = NULL;
  CHECK(ks_token_verify(&out, engine, token, "capi-acme", "https://other.test") == KS_EAUTH);
  CHECK(strstr(ks_last_error(), "audience") != NULL);
  CHECK(ks_token_verify(&out, engine, token, "control_plane", NULL) == KS_EAUTH);
  token[strlen(token) - 3] = token[strlen(token) - 3] == 'A' ? 'B' : 'A';
  CHECK(ks_token_verify(&out, engine, token, NULL, NULL) == KS_EAUTH);
  CHECK(strstr(ks_last_error(), "signature") != NULL);
  CHECK(out == NULL);
  CHECK(ks_token_verify(&out, engine, "not.a.token", NULL, NULL) == KS_EAUTH);
  snprintf(body, sizeof body,
           "{\"grant_type\":\"client_credentials\",\"client_id\":\"%s\","
           "\"client_secret\":\"wrong\",\"audience\":\"https://api.capi.test\"}",
           client_id);
  CHECK(ks_token_issue(&out, engine, "capi-acme", body) == KS_EAUTH);
  CHECK(strstr(ks_last_error(), "invalid_client") != NULL);
  /* A user's tokens, the host vouching for the user (no password): ann in organization "shop". */
  CHECK(ks_engine_manage(&out, engine, "capi-acme", "POST", "/organizations",
                         "{\"name\":\"shop\"}") == KS_OK);
  char org[128], path[256];
  json_string(org, sizeof org, out, "id");
  ks_free(out);
  out = NULL;
  snprintf(path, sizeof path, "/organizations/%s/members", org);
  snprintf(body, sizeof body, "{\"members\":[\"%s\"]}", ann);
  CHECK(ks_engine_manage(&out, engine, "capi-acme", "POST", path, body) == KS_OK);
  ks_free(out);
  out = NULL;
  snprintf(body, sizeof body,
           "{\"grant_type\":\"urn:keystead:grant-type:user\",\"client_id\":\"%s\","
           "\"user_id\":\"%s\",\"audience\":\"https://api.capi.test\","
           "\"organization\":\"shop\"}",
           client_id, ann);
  CHECK(ks_token_issue(&out, engine, "capi-acme", body) == KS_OK);
  json_string(token, sizeof token, out, "access_token");
  CHECK(out != NULL && strstr(out, "\"id_token\"") != NULL);
  ks_free(out);
  out = NULL;
  CHECK(ks_token_verify(&out, engine, token, "capi-acme", "https://api.capi.test") == KS_OK);
  char claim[128];
  json_string(claim, sizeof claim, out, "sub");
  CHECK(strcmp(claim, ann) == 0);
  json_string(claim, sizeof claim, out, "org_name");
  CHECK(strcmp(claim, "shop") == 0);
  ks_free(out);
  out = NULL;
  snprintf(body, sizeof body,
           "{\"grant_type\":\"urn:keystead:grant-type:user\",\"client_id\":\"%s\","
           "\"user_id\":\"auth0|nobody\"}",
           client_id);
  CHECK(ks_token_issue(&out, engine, "capi-acme", body) == KS_EINVALID);
  CHECK(strstr(ks_last_error(), "invalid_grant") != NULL);
  CHECK(out == NULL);
  CHECK(ks_token_issue(&out, engine, "capi-acme", "{\"grant_type\":5}") == KS_EINVALID);
  CHECK(ks_token_issue(&out, engine, "capi-acme", "{\"grant_type\":\"nope\"}") == KS_EINVALID);

  CHECK(ks_engine_manage(&out, engine, NULL, "DELETE", "/tenants/capi-acme", NULL) == KS_OK);
  CHECK(out != NULL && out[0] == '\0');
  ks_free(out);
  CHECK(ks_engine_manage(NULL, engine, NULL, "GET", "/tenants", NULL) == KS_EINVALID);

  ks_free(NULL);
  ks_engine_close(engine);
  ks_engine_close(NULL);

  printf("%d passed, %d failed\n", passed, failures);
  return failures ? 1 : 0;
}
