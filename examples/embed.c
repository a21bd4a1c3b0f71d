/* Embeds Keystead in a C program: opens an engine on a data directory, creates a customer
 * tenant with an API and a machine client, issues a token and verifies it, all without HTTP.
 *
 *   cc embed.c $(pkg-config --cflags --libs keystead) -o embed && ./embed ./data
 */
#include <stdio.h>
#include <string.h>

#include "keystead.h"

/* The string value of "name" in a flat JSON object (ids and secrets; a real host would use its
 * JSON library). */
static void json_string(char* out, size_t size, const char* json, const char* name) {
  char key[64];
  snprintf(key, sizeof key, "\"%s\":\"", name);
  const char* p = json ? strstr(json, key) : NULL;
  size_t n = 0;
  if (p) {
    p += strlen(key);
    while (p[n] && p[n] != '"' && n + 1 < size) ++n;
    memcpy(out, p, n);
  }
  out[n] = '\0';
}

/* One management call; prints the error and returns 0 when it fails. */
static int manage(ks_engine* engine, const char* tenant, const char* method, const char* path,
                  const char* body, char* id_out, size_t id_size, const char* id_member) {
  char* out = NULL;
  int rc = ks_engine_manage(&out, engine, tenant, method, path, body);
  if (rc != KS_OK) {
    fprintf(stderr, "%s %s: %d %s\n", method, path, rc, ks_last_error());
    return 0;
  }
  if (id_out) json_string(id_out, id_size, out, id_member);
  ks_free(out);
  return 1;
}

int main(int argc, char** argv) {
  char config[512];
  snprintf(config, sizeof config, "{\"data_dir\":\"%s\",\"public_url\":\"https://id.example.com\"}",
           argc > 1 ? argv[1] : "./data");
  ks_engine* engine = NULL;
  if (ks_engine_open(&engine, config) != KS_OK) {
    fprintf(stderr, "open: %s\n", ks_last_error());
    return 1;
  }
  printf("keystead %s (ABI %d)\n", ks_version(), ks_abi_version());

  /* A customer tenant (a second run finds it: KS_EEXISTS), its API and a machine client. */
  char* created = NULL;
  int rc = ks_engine_manage(&created, engine, NULL, "POST", "/tenants",
                            "{\"id\":\"example-co\",\"friendly_name\":\"Example Co\"}");
  ks_free(created);
  if (rc != KS_OK && rc != KS_EEXISTS) {
    fprintf(stderr, "create tenant: %s\n", ks_last_error());
    return 1;
  }
  char client_id[128], secret[128], body[512];
  int ok = 1;
  if (rc == KS_OK)
    ok = ok && manage(engine, "example-co", "POST", "/resource-servers",
                      "{\"identifier\":\"https://api.example.co\",\"name\":\"Example API\"}", NULL,
                      0, NULL);
  ok = ok && manage(engine, "example-co", "POST", "/clients",
                    "{\"name\":\"billing-job\",\"app_type\":\"non_interactive\"}", client_id,
                    sizeof client_id, "client_id");
  secret[0] = '\0';
  if (ok) {
    char* c = NULL;
    char path[256];
    snprintf(path, sizeof path, "/clients/%s/rotate-secret", client_id);
    ok = ks_engine_manage(&c, engine, "example-co", "POST", path, NULL) == KS_OK;
    json_string(secret, sizeof secret, c, "client_secret");
    ks_free(c);
  }
  snprintf(body, sizeof body,
           "{\"client_id\":\"%s\",\"audience\":\"https://api.example.co\",\"scope\":[]}",
           client_id);
  ok = ok && manage(engine, "example-co", "POST", "/client-grants", body, NULL, 0, NULL);
  if (!ok) return 1;

  /* A token, as the client would get it from the tenant's token endpoint, and its check. */
  char* response = NULL;
  snprintf(body, sizeof body,
           "{\"grant_type\":\"client_credentials\",\"client_id\":\"%s\",\"client_secret\":\"%s\","
           "\"audience\":\"https://api.example.co\"}",
           client_id, secret);
  if (ks_token_issue(&response, engine, "example-co", body) != KS_OK) {
    fprintf(stderr, "token: %s\n", ks_last_error());
    return 1;
  }
  char token[4096];
  json_string(token, sizeof token, response, "access_token");
  ks_free(response);
  char* claims = NULL;
  if (ks_token_verify(&claims, engine, token, "example-co", "https://api.example.co") != KS_OK) {
    fprintf(stderr, "verify: %s\n", ks_last_error());
    return 1;
  }
  printf("verified: %s\n", claims);
  ks_free(claims);
  ks_engine_close(engine);
  return 0;
}
