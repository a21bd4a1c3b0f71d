// The keystead command line: `serve` runs the server; the other commands work on the data dir
// directly, through the same engine and Management API handlers the server uses.
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "core/engine.h"
#include "core/http/http.h"
#include "core/json.h"
#include "hooks/lua_runner.h"
#include "server/http_server.h"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

constexpr char kUsage[] = R"(Usage: keystead <command> [options]

Commands:
  serve                          Run the HTTP(S) server until SIGTERM or SIGINT.
  tenant create ID [--name NAME] [--isolation shared|database]
                                 Create a child tenant (NAME: its friendly name; isolation
                                 default: --default-isolation).
  tenant list                    List tenants.
  tenant show ID                 Show one tenant.
  tenant delete ID               Delete a tenant and its data.
  tenant move ID --isolation shared|database
                                 Move a tenant's data into the shared database or into a
                                 database of its own ({data-dir}/tenants/ID.db). Works on a
                                 running server's data dir: the tenant's writes wait while its
                                 data is copied; tokens and sessions stay valid.
  tenant export ID [--output FILE]
                                 Write a tenant as one JSON document (stdout by default). It
                                 holds password hashes and sealed keys: keep it secret.
  tenant import FILE [--status active|suspended] [--isolation shared|database]
                                 Create a tenant from an export ('-' reads stdin), under the
                                 same id; needs the master key of the exporting deployment.
                                 No size limit (the HTTP import is capped by
                                 KEYSTEAD_MAX_BODY_BYTES).
  client create --tenant ID --name NAME [--grant-types A,B] [--app-type TYPE]
                                 Create an application; prints it as JSON, secret included.
  migrate                        Apply database migrations and exit.
  help                           Show this help (also --help, -h).

Configuration options, accepted by every command. Each one overrides the environment variable
KEYSTEAD_<NAME> (upper case, '-' becomes '_'), e.g. --data-dir overrides KEYSTEAD_DATA_DIR:
  --listen ADDR                  HTTP listen address (default 127.0.0.1:8080)
  --tls-listen ADDR              HTTPS listen address (default: none)
  --tls-cert FILE, --tls-key FILE
                                 PEM certificate chain and key; in dev mode without them a
                                 self-signed certificate is generated into the data dir
  --data-dir DIR                 Data directory (default ./data)
  --public-url URL               Public base URL (default http://{listen})
  --base-domain DOMAIN           Tenants are served at {tenant}.DOMAIN
  --mode dev|prod                Mode (default dev)
  --threads N                    Event loop threads (default: number of cores)
  --control-plane-id ID          Control-plane tenant id (default control_plane)
  --default-isolation MODE       Where tenants created without "isolation" keep their data:
                                 shared (one database, default) or database (one file each)
  --OTHER-SETTING VALUE          Any other KEYSTEAD_* setting, e.g. --master-key, --database,
                                 --tenant-resolution, --tenant-header
Options take their value as the next argument or after '=' (--listen=127.0.0.1:0).

Output: command results are printed to stdout as JSON; errors go to stderr. The server prints
"keystead listening on http://HOST:PORT" to stdout once it accepts connections, and one JSON
access-log line per request to stderr.

Exit status:
  0  success (the server: stopped by a signal after draining)
  1  failure: bad configuration, startup error, or the command was refused (non-2xx)
  2  usage error: unknown command or option, missing or malformed argument
)";

struct UsageError {
  std::string message;
};

// Arguments after the command words: positionals, command-specific options, and configuration
// options (everything else spelled --name).
struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> options;  // command-specific, by name without "--"
};

std::string env_name(std::string_view flag) {
  std::string name(flag);
  for (char& c : name) {
    if (c == '-')
      c = '_';
    else if (c >= 'a' && c <= 'z')
      c = static_cast<char>(c - 'a' + 'A');
  }
  return name;
}

Args parse_args(const std::vector<std::string>& argv, size_t first,
                const std::vector<std::string>& command_options, ks::Config& config) {
  Args args;
  for (size_t i = first; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (arg.size() < 3 || arg.compare(0, 2, "--") != 0) {
      if (arg.size() > 1 && arg[0] == '-') throw UsageError{"unknown option '" + arg + "'"};
      args.positional.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    } else if (i + 1 < argv.size()) {
      value = argv[++i];
    }
    if (!value) throw UsageError{"option --" + name + " needs a value"};
    bool command_option = false;
    for (const std::string& o : command_options) command_option |= (o == name);
    if (command_option) {
      args.options[name] = *value;
      continue;
    }
    bool known = false;
    try {
      known = config.apply(env_name(name), *value);
    } catch (const std::exception& e) {
      throw UsageError{"invalid value for --" + name + ": " + e.what()};
    }
    if (!known) throw UsageError{"unknown option '--" + name + "'"};
  }
  return args;
}

void expect_positionals(const Args& args, size_t n, const char* usage) {
  if (args.positional.size() != n) throw UsageError{std::string("usage: keystead ") + usage};
}

std::string option(const Args& args, const std::string& name) {
  auto it = args.options.find(name);
  return it == args.options.end() ? std::string() : it->second;
}

// Path segments from the command line are data, not routes.
std::string path_segment(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    if (comma > start) out.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

// Prints a Management API answer: the body as pretty JSON on success, the error on stderr.
int report(const ks::http::Response& response) {
  if (response.status >= 200 && response.status < 300) {
    if (!response.body.empty()) {
      ks::Json body = ks::Json::parse(response.body, nullptr, /*allow_exceptions=*/false);
      std::string text = body.is_discarded() ? response.body : body.dump(2);
      std::printf("%s\n", text.c_str());
    }
    return kExitOk;
  }
  std::string message = response.body;
  ks::Json body = ks::Json::parse(response.body, nullptr, false);
  if (body.is_object()) {
    for (const char* key : {"message", "error_description", "error"}) {
      auto it = body.find(key);
      if (it != body.end() && it->is_string()) {
        message = it->get<std::string>();
        break;
      }
    }
  }
  std::fprintf(stderr, "keystead: %d %s: %s\n", response.status,
               std::string(ks::http::reason_phrase(response.status)).c_str(), message.c_str());
  return kExitError;
}

std::unique_ptr<ks::Engine> open_engine(const ks::Config& config) {
  config.validate();
  ks::Engine::Deps deps;
  deps.hooks = ks::hooks::make_lua_runner(config.hook_limits);
  return ks::Engine::open(config, std::move(deps));
}

int serve(const ks::Config& config) {
  auto engine = open_engine(config);
  {
    ks::server::HttpServer server(*engine, engine->config());
    server.run();
  }
  engine->shutdown();
  return kExitOk;
}

// keystead tenant export ID [--output FILE]: the document as compact JSON, one line.
int tenant_export(const std::vector<std::string>& argv, ks::Config& config) {
  Args args = parse_args(argv, 3, {"output"}, config);
  expect_positionals(args, 1, "tenant export ID [--output FILE]");
  auto engine = open_engine(config);
  auto response =
      engine->manage(engine->config().control_plane_id, "GET",
                     "/tenants/" + path_segment(args.positional[0]) + "/export", nullptr);
  engine->shutdown();
  if (response.status != 200) return report(response);
  const std::string output = option(args, "output");
  if (output.empty() || output == "-") {
    std::fwrite(response.body.data(), 1, response.body.size(), stdout);
    std::fputc('\n', stdout);
    return std::fflush(stdout) == 0 ? kExitOk : kExitError;
  }
  std::ofstream out(output, std::ios::binary | std::ios::trunc);
  out << response.body << '\n';
  out.close();
  if (!out) {
    std::fprintf(stderr, "keystead: cannot write %s\n", output.c_str());
    return kExitError;
  }
  return kExitOk;
}

// keystead tenant import FILE [--status S] [--isolation I]: prints the created tenant.
int tenant_import(const std::vector<std::string>& argv, ks::Config& config) {
  constexpr char kImportUsage[] =
      "tenant import FILE [--status active|suspended] [--isolation shared|database]";
  Args args = parse_args(argv, 3, {"status", "isolation"}, config);
  expect_positionals(args, 1, kImportUsage);
  const std::string& file = args.positional[0];
  std::string text;
  if (file == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "keystead: cannot read %s\n", file.c_str());
      return kExitError;
    }
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  ks::Json doc = ks::Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    std::fprintf(stderr, "keystead: %s is not valid JSON\n", file.c_str());
    return kExitError;
  }
  std::string query;
  for (const char* name : {"status", "isolation"}) {
    if (!args.options.count(name)) continue;
    query +=
        (query.empty() ? "" : "&") + std::string(name) + "=" + path_segment(option(args, name));
  }
  auto engine = open_engine(config);
  int rc = report(
      engine->manage(engine->config().control_plane_id, "POST", "/tenants/import", doc, query));
  engine->shutdown();
  return rc;
}

int run(const std::vector<std::string>& argv) {
  if (argv.size() < 2) throw UsageError{"missing command"};
  const std::string& command = argv[1];
  for (const std::string& a : argv) {
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return kExitOk;
    }
  }
  if (command == "help") {
    std::fputs(kUsage, stdout);
    return kExitOk;
  }

  ks::Config config = ks::Config::from_env();
  if (command == "serve") {
    Args args = parse_args(argv, 2, {}, config);
    expect_positionals(args, 0, "serve [options]");
    return serve(config);
  }
  if (command == "migrate") {
    Args args = parse_args(argv, 2, {}, config);
    expect_positionals(args, 0, "migrate [options]");
    auto engine = open_engine(config);  // opening runs the migrations
    engine->shutdown();
    std::printf("migrations applied\n");
    return kExitOk;
  }
  if (command == "tenant") {
    if (argv.size() < 3)
      throw UsageError{"usage: keystead tenant create|list|show|delete|move|export|import ..."};
    const std::string& verb = argv[2];
    if (verb == "export") return tenant_export(argv, config);
    if (verb == "import") return tenant_import(argv, config);
    std::vector<std::string> options;
    if (verb == "create") options = {"name", "isolation"};
    if (verb == "move") options = {"isolation"};
    Args args = parse_args(argv, 3, options, config);
    std::string method;
    std::string path = "/tenants";
    ks::Json body = nullptr;
    if (verb == "create") {
      expect_positionals(args, 1,
                         "tenant create ID [--name FRIENDLY_NAME] [--isolation shared|database]");
      method = "POST";
      body = {{"id", args.positional[0]}};
      if (args.options.count("name")) body["friendly_name"] = option(args, "name");
      if (args.options.count("isolation")) body["isolation"] = option(args, "isolation");
    } else if (verb == "list") {
      expect_positionals(args, 0, "tenant list");
      method = "GET";
    } else if (verb == "show" || verb == "delete") {
      expect_positionals(args, 1, verb == "show" ? "tenant show ID" : "tenant delete ID");
      method = verb == "show" ? "GET" : "DELETE";
      path += "/" + path_segment(args.positional[0]);
    } else if (verb == "move") {
      constexpr char kMoveUsage[] = "tenant move ID --isolation shared|database";
      expect_positionals(args, 1, kMoveUsage);
      if (!args.options.count("isolation"))
        throw UsageError{std::string("usage: keystead ") + kMoveUsage};
      method = "POST";
      path += "/" + path_segment(args.positional[0]) + "/move";
      body = {{"isolation", option(args, "isolation")}};
    } else {
      throw UsageError{"unknown tenant command '" + verb + "'"};
    }
    auto engine = open_engine(config);
    int rc = report(engine->manage(engine->config().control_plane_id, method, path, body));
    engine->shutdown();
    return rc;
  }
  if (command == "client") {
    if (argv.size() < 3 || argv[2] != "create") {
      throw UsageError{"usage: keystead client create --tenant ID --name NAME ..."};
    }
    Args args = parse_args(argv, 3, {"tenant", "name", "grant-types", "app-type"}, config);
    expect_positionals(args, 0,
                       "client create --tenant ID --name NAME [--grant-types A,B] "
                       "[--app-type TYPE]");
    std::string tenant = option(args, "tenant");
    std::string name = option(args, "name");
    if (tenant.empty() || name.empty()) {
      throw UsageError{"client create needs --tenant ID and --name NAME"};
    }
    ks::Json body = {{"name", name}};
    if (args.options.count("grant-types"))
      body["grant_types"] = split_list(option(args, "grant-types"));
    if (args.options.count("app-type")) body["app_type"] = option(args, "app-type");
    auto engine = open_engine(config);
    int rc = report(engine->manage(tenant, "POST", "/clients", body));
    engine->shutdown();
    return rc;
  }
  throw UsageError{"unknown command '" + command + "'"};
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  try {
    return run(args);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "keystead: %s\nRun 'keystead --help' for usage.\n", e.message.c_str());
    return kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "keystead: %s\n", e.what());
    return kExitError;
  }
}
