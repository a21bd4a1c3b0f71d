#pragma once
// Email delivery off the request path: requests enqueue, one background thread owned by the
// engine resolves the tenant's provider and sends through the Mailer.
//
// Provider resolution (DESIGN.md, runtime fallback): the tenant's own enabled provider, else the
// control plane's; it is read at send time and its secrets are decrypted only for that send,
// never copied. No provider anywhere: dev mode writes to the `dev` outbox
// ({data_dir}/outbox.jsonl); prod mode logs "fn" and drops the message.
//
// Tenant log events: the delivery's success type ("scpr" reset link sent, "svr" verification
// email sent) or "fn" (failed notification, with the reason in `description`).
//
// Nothing is persisted: a message still queued when the process dies is lost (the user asks
// again). On shutdown the message in flight finishes; messages still queued are dropped, each
// logged as "fn".
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "core/email/mailer.h"
#include "core/json.h"

namespace ks {
class EngineImpl;
}

namespace ks::email {

// Where a tenant's provider is stored: record kind "email_provider", id "default"; the sealed
// secrets (smtp_pass) live in its "_secrets" member under this AAD.
inline constexpr std::string_view kProviderKind = "email_provider";
inline constexpr std::string_view kProviderId = "default";
std::string provider_aad(std::string_view tenant);

// The provider a tenant sends with, credentials decrypted (see Mailer::send); nullopt if neither
// the tenant nor the control plane has an enabled one. Throws std::runtime_error if the stored
// secrets cannot be decrypted.
std::optional<Json> resolve_provider(EngineImpl& e, std::string_view tenant);

struct Delivery {
  std::string tenant;
  EmailMessage message;              // an empty `from`: the provider's default_from_address, else:
  std::string fallback_from;         // no-reply@<tenant host>
  std::string success_type;          // log type written when the provider accepted the message
  Json log_fields = Json::object();  // user_id, client_id, ... added to the log events
};

class DeliveryQueue {
 public:
  static constexpr size_t kMaxQueued = 10000;

  DeliveryQueue(EngineImpl& e, std::shared_ptr<Mailer> mailer);
  ~DeliveryQueue();
  DeliveryQueue(const DeliveryQueue&) = delete;
  DeliveryQueue& operator=(const DeliveryQueue&) = delete;

  // Never blocks on the network. A full queue or a stopped one drops the message ("fn").
  void enqueue(Delivery d);
  // Blocks until every message queued so far was attempted (tests, tools).
  void drain();
  // Finishes the message in flight, drops the rest ("fn") and joins the thread. Idempotent.
  void stop();

 private:
  void run();
  void deliver(Delivery& d);
  void fail(const Delivery& d, const std::string& reason);

  EngineImpl& e_;
  std::shared_ptr<Mailer> mailer_;
  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable idle_cv_;
  std::deque<Delivery> queue_;
  bool busy_ = false;
  bool stopping_ = false;
  bool stopped_ = false;
  std::thread thread_;
};

}  // namespace ks::email
