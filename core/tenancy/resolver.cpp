#include "core/tenancy/resolver.h"

#include <algorithm>

#include "core/model/ids.h"

namespace ks::tenancy {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view strip_port(std::string_view host) {
  if (!host.empty() && host.front() == '[') {  // [::1]:8080
    auto close = host.find(']');
    return close == std::string_view::npos ? host : host.substr(0, close + 1);
  }
  auto colon = host.rfind(':');
  return colon == std::string_view::npos ? host : host.substr(0, colon);
}

}  // namespace

TenantResolver::TenantResolver(const Config& cfg, DomainLookup domains, CanonicalIssuer canonical)
    : cfg_(cfg), domains_(std::move(domains)), canonical_(std::move(canonical)) {}

Resolution TenantResolver::resolve(const http::Request& req) const {
  std::string_view scheme = req.secure ? "https" : "http";
  std::string_view host = req.header("host");
  if (cfg_.trust_forwarded_host) {
    if (auto fh = req.header("x-forwarded-host"); !fh.empty()) host = fh.substr(0, fh.find(','));
    if (auto fp = req.header("x-forwarded-proto"); fp == "https" || fp == "http") scheme = fp;
  }
  return resolve_parts(scheme, host, req.path, &req);
}

Resolution TenantResolver::resolve_parts(std::string_view scheme, std::string_view host_port,
                                         std::string_view path, const http::Request* req) const {
  const std::string public_url = cfg_.effective_public_url();
  // Without a Host header (HTTP/1.0, embedding hosts) the public URL names the server.
  std::string base =
      host_port.empty() ? public_url : std::string(scheme) + "://" + lower(host_port);
  std::string host = lower(strip_port(host_port));

  for (const auto& strategy : cfg_.resolution) {
    if (strategy == "domain" && !host.empty()) {
      if (auto t = domains_(host)) {
        return {Resolution::Kind::kResolved, *t, base + "/", std::string(path), "domain", {}};
      }
    } else if (strategy == "subdomain" && !cfg_.base_domain.empty() && !host.empty()) {
      const std::string suffix = "." + lower(cfg_.base_domain);
      if (host.size() > suffix.size() && host.ends_with(suffix)) {
        std::string label = host.substr(0, host.size() - suffix.size());
        bool reserved = std::find(cfg_.reserved_ids.begin(), cfg_.reserved_ids.end(), label) !=
                        cfg_.reserved_ids.end();
        if (label.find('.') == std::string::npos && !reserved) {
          if (!model::valid_tenant_id(label))
            return {Resolution::Kind::kInvalid,           {}, {}, {}, "subdomain",
                    "Invalid tenant id in host: " + label};
          return {Resolution::Kind::kResolved, label,       base + "/",
                  std::string(path),           "subdomain", {}};
        }
      }
    } else if (strategy == "path" && path.starts_with("/t/")) {
      std::string_view rest = path.substr(3);
      auto slash = rest.find('/');
      std::string_view id = rest.substr(0, slash);
      std::string local = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
      if (!model::valid_tenant_id(id))
        return {Resolution::Kind::kInvalid,
                {},
                {},
                {},
                "path",
                "Invalid tenant id: " + std::string(id)};
      return {Resolution::Kind::kResolved,
              std::string(id),
              base + "/t/" + std::string(id) + "/",
              std::move(local),
              "path",
              {}};
    } else if (strategy == "header" && req) {
      std::string_view id = req->header("tenant-id");
      if (id.empty()) id = req->header("x-tenant-id");
      if (id.empty() && !cfg_.tenant_header.empty()) id = req->header(cfg_.tenant_header);
      if (!id.empty()) {
        if (!model::valid_tenant_id(id))
          return {Resolution::Kind::kInvalid,
                  {},
                  {},
                  {},
                  "header",
                  "Invalid tenant id: " + std::string(id)};
        return {Resolution::Kind::kResolved, std::string(id), canonical_(id),
                std::string(path),           "header",        {}};
      }
    }
  }
  // The public URL itself is the control plane's home; in dev mode every unresolved request
  // goes there too (plain localhost with no DNS set up).
  if (cfg_.dev() || base == public_url) {
    return {Resolution::Kind::kResolved,
            cfg_.control_plane_id,
            base + "/",
            std::string(path),
            "default",
            {}};
  }
  return {Resolution::Kind::kUnresolved, {}, {}, std::string(path), {}, {}};
}

std::optional<std::string> TenantResolver::tenant_of_issuer(std::string_view issuer) const {
  std::string_view scheme;
  if (issuer.starts_with("https://")) {
    scheme = "https";
  } else if (issuer.starts_with("http://")) {
    scheme = "http";
  } else {
    return std::nullopt;
  }
  std::string_view rest = issuer.substr(scheme.size() + 3);
  auto slash = rest.find('/');
  std::string_view host = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "/" : rest.substr(slash);
  Resolution r = resolve_parts(scheme, host, path, nullptr);
  if (r.kind != Resolution::Kind::kResolved) return std::nullopt;
  // The issuer must be exactly the tenant's base URL, not some page below it.
  if (r.local_path != "/" || r.issuer != issuer) return std::nullopt;
  return r.tenant;
}

}  // namespace ks::tenancy
