// The `dev` provider: every message is appended as one JSON line to an outbox file (by default
// {data_dir}/outbox.jsonl), and the router that picks a transport by provider name.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <stdexcept>

#include "core/clock.h"
#include "core/email/mailer.h"

namespace ks::email {
namespace {

class OutboxMailer final : public Mailer {
 public:
  explicit OutboxMailer(std::string path) : path_(std::move(path)) {}

  void send(const Json& config, const EmailMessage& m) override {
    const Json line = {{"date", iso8601(SystemClock().now_ms())},
                       {"tenant", config.value("tenant", "")},
                       {"to", m.to},
                       {"from", m.from},
                       {"subject", m.subject},
                       {"text", m.text},
                       {"html", m.html}};
    const std::string data = line.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
    std::lock_guard<std::mutex> lock(mu_);
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) throw std::runtime_error("cannot open " + path_ + ": " + std::strerror(errno));
    size_t off = 0;
    while (off < data.size()) {
      const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int err = errno;
        ::close(fd);
        throw std::runtime_error("cannot write " + path_ + ": " + std::strerror(err));
      }
      off += static_cast<size_t>(n);
    }
    ::close(fd);
  }

 private:
  std::mutex mu_;
  std::string path_;
};

class RoutingMailer final : public Mailer {
 public:
  explicit RoutingMailer(std::string outbox_path)
      : outbox_(outbox_mailer(std::move(outbox_path))) {}

  void send(const Json& config, const EmailMessage& m) override {
    const std::string name = config.value("name", "");
    if (name == "dev") return outbox_->send(config, m);
    if (name == "smtp") {
      std::call_once(smtp_once_, [&] { smtp_ = smtp_mailer(); });
      return smtp_->send(config, m);
    }
    throw std::runtime_error("unknown email provider '" + name + "'");
  }

 private:
  std::shared_ptr<Mailer> outbox_;
  std::once_flag smtp_once_;
  std::shared_ptr<Mailer> smtp_;
};

}  // namespace

bool header_safe(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

std::shared_ptr<Mailer> outbox_mailer(std::string path) {
  return std::make_shared<OutboxMailer>(std::move(path));
}

std::shared_ptr<Mailer> make_mailer(std::string outbox_path) {
  return std::make_shared<RoutingMailer>(std::move(outbox_path));
}

}  // namespace ks::email
