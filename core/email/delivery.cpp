#include "core/email/delivery.h"

#include <iostream>

#include "core/engine_impl.h"
#include "core/oidc/flow.h"

namespace ks::email {
namespace {

// The tenant's own provider, if enabled, with its secrets opened.
std::optional<Json> own_provider(EngineImpl& e, std::string_view tenant) {
  std::optional<Json> rec;
  e.store().read(tenant, [&](store::Tx& tx) {
    if (auto r = tx.get(kProviderKind, kProviderId)) rec = std::move(r->data);
  });
  if (!rec || !rec->value("enabled", true)) return std::nullopt;
  Json credentials = Json::object();
  const Json stored = rec->value("credentials", Json::object());
  for (auto& [k, v] : stored.items())
    if (!k.ends_with("_hint")) credentials[k] = v;
  if (rec->contains("_secrets") && (*rec)["_secrets"].is_string()) {
    auto opened = e.open((*rec)["_secrets"].get<std::string>(), provider_aad(tenant));
    Json secrets = opened ? Json::parse(*opened, nullptr, false) : Json();
    if (!secrets.is_object())
      throw std::runtime_error("the email provider's credentials of tenant '" +
                               std::string(tenant) + "' cannot be decrypted");
    for (auto& [k, v] : secrets.items()) credentials[k] = v;
  }
  return Json{{"name", rec->value("name", "")},
              {"default_from_address", rec->value("default_from_address", "")},
              {"credentials", std::move(credentials)},
              {"settings", rec->value("settings", Json::object())},
              {"provider_tenant", std::string(tenant)}};
}

void warn(const std::string& tenant, const std::string& error) {
  std::cerr << "{\"level\":\"warn\",\"msg\":\"email not delivered\",\"tenant\":"
            << Json(tenant).dump()
            << ",\"error\":" << Json(error).dump(-1, ' ', false, Json::error_handler_t::replace)
            << "}\n";
}

}  // namespace

std::string provider_aad(std::string_view tenant) {
  return std::string(tenant) + "\n" + std::string(kProviderKind);
}

std::optional<Json> resolve_provider(EngineImpl& e, std::string_view tenant) {
  if (auto p = own_provider(e, tenant)) return p;
  const std::string& cp = e.cfg().control_plane_id;
  if (tenant != cp) return own_provider(e, cp);
  return std::nullopt;
}

DeliveryQueue::DeliveryQueue(EngineImpl& e, std::shared_ptr<Mailer> mailer)
    : e_(e), mailer_(std::move(mailer)) {
  thread_ = std::thread([this] { run(); });
}

DeliveryQueue::~DeliveryQueue() { stop(); }

void DeliveryQueue::enqueue(Delivery d) {
  std::string refused;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_)
      refused = "Email not sent: the server is shutting down";
    else if (queue_.size() >= kMaxQueued)
      refused = "Email not sent: the delivery queue is full";
    else
      queue_.push_back(std::move(d));
  }
  if (refused.empty())
    work_cv_.notify_one();
  else
    fail(d, refused);
}

void DeliveryQueue::drain() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_cv_.wait(lock, [&] { return (queue_.empty() && !busy_) || stopped_; });
}

void DeliveryQueue::stop() {
  std::deque<Delivery> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
  {
    std::lock_guard<std::mutex> lock(mu_);
    dropped.swap(queue_);
    stopped_ = true;
  }
  idle_cv_.notify_all();
  for (const auto& d : dropped) fail(d, "Email not sent: the server shut down first");
}

void DeliveryQueue::run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) break;
    Delivery d = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    try {
      deliver(d);
    } catch (const std::exception& ex) {
      warn(d.tenant, ex.what());
    } catch (...) {
      warn(d.tenant, "unknown error");
    }
    lock.lock();
    busy_ = false;
    if (queue_.empty()) idle_cv_.notify_all();
  }
  idle_cv_.notify_all();
}

void DeliveryQueue::fail(const Delivery& d, const std::string& reason) {
  warn(d.tenant, reason);
  try {
    Json f = d.log_fields;
    f["description"] = reason;
    if (!f.contains("user_name")) f["user_name"] = d.message.to;
    oidc::log_event(e_, d.tenant, "fn", std::move(f));
  } catch (const std::exception& ex) {
    warn(d.tenant, std::string("cannot log the failed notification: ") + ex.what());
  }
}

void DeliveryQueue::deliver(Delivery& d) {
  std::optional<Json> provider;
  try {
    provider = resolve_provider(e_, d.tenant);
  } catch (const std::exception& ex) {
    return fail(d, ex.what());
  }
  if (!provider) {
    if (!e_.cfg().dev())
      return fail(d,
                  "Email not sent: no email provider is configured for this tenant or the "
                  "control plane");
    provider = Json{{"name", "dev"}};
  }
  (*provider)["tenant"] = d.tenant;
  EmailMessage m = d.message;
  if (m.from.empty()) m.from = provider->value("default_from_address", "");
  if (m.from.empty()) m.from = d.fallback_from;
  const Json details = {{"provider", provider->value("name", "")},
                        {"provider_tenant", provider->value("provider_tenant", "")}};
  provider->erase("provider_tenant");
  try {
    mailer_->send(*provider, m);
  } catch (const std::exception& ex) {
    return fail(d, ex.what());
  }
  Json f = d.log_fields;
  f["description"] = "\"" + m.subject + "\" email sent to " + m.to;
  if (!f.contains("user_name")) f["user_name"] = m.to;
  f["details"] = details;
  oidc::log_event(e_, d.tenant, d.success_type.empty() ? "sn" : d.success_type, std::move(f));
}

}  // namespace ks::email
