#include "common/testing/mem_transport.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"

namespace rdf::testing {
namespace {

std::string ConnectionName(int n) { return absl::StrCat("conn-", n); }

// Waits up to `timeout` for `q` to hold a message, and takes it.
template <typename T>
std::optional<T> PopWithin(absl::Mutex& mu, std::deque<T>& q, absl::Duration timeout)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
  auto ready = [&q] { return !q.empty(); };
  mu.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (q.empty()) return std::nullopt;
  T m = std::move(q.front());
  q.pop_front();
  return m;
}

class Listener : public net::Transport {
 public:
  explicit Listener(std::shared_ptr<MemTransportPair::Shared> s) : s_(std::move(s)) {}
  absl::Status Send(absl::string_view peer, absl::string_view body) override {
    absl::MutexLock l(&s_->mu);
    // Like a ROUTER: a message for a connection that is gone is dropped.
    if (peer != ConnectionName(s_->connection)) return absl::UnavailableError("no such peer");
    s_->to_connector.emplace_back(body);
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<net::Message>> Recv(absl::Duration timeout) override {
    absl::MutexLock l(&s_->mu);
    return PopWithin(s_->mu, s_->to_listener, timeout);
  }
  net::LinkEvents TakeLinkEvents() override { return {}; }
  absl::Status Reconnect() override { return absl::OkStatus(); }

 private:
  std::shared_ptr<MemTransportPair::Shared> s_;
};

class Connector : public net::Transport {
 public:
  explicit Connector(std::shared_ptr<MemTransportPair::Shared> s) : s_(std::move(s)) {}
  absl::Status Send(absl::string_view, absl::string_view body) override {
    absl::MutexLock l(&s_->mu);
    s_->to_listener.push_back({ConnectionName(s_->connection), std::string(body), ""});
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<net::Message>> Recv(absl::Duration timeout) override {
    absl::MutexLock l(&s_->mu);
    std::optional<std::string> body = PopWithin(s_->mu, s_->to_connector, timeout);
    if (!body.has_value()) return std::nullopt;
    return net::Message{"", *std::move(body), ""};
  }
  net::LinkEvents TakeLinkEvents() override {
    absl::MutexLock l(&s_->mu);
    return std::exchange(s_->events, net::LinkEvents{});
  }
  absl::Status Reconnect() override {
    absl::MutexLock l(&s_->mu);
    ++s_->reconnects;
    ++s_->connection;
    s_->to_listener.clear();
    s_->to_connector.clear();
    return absl::OkStatus();
  }

 private:
  std::shared_ptr<MemTransportPair::Shared> s_;
};

}  // namespace

MemTransportPair::MemTransportPair()
    : shared_(std::make_shared<Shared>()),
      listener_(std::make_unique<Listener>(shared_)),
      connector_(std::make_unique<Connector>(shared_)),
      listener_ptr_(listener_.get()),
      connector_ptr_(connector_.get()) {}

MemTransportPair::~MemTransportPair() = default;

void MemTransportPair::Disconnect() {
  absl::MutexLock l(&shared_->mu);
  ++shared_->connection;
  shared_->to_listener.clear();
  shared_->to_connector.clear();
  shared_->events.disconnected = true;
}

void MemTransportPair::FailAuth() {
  absl::MutexLock l(&shared_->mu);
  shared_->events.auth_failed = true;
}

int MemTransportPair::reconnects() {
  absl::MutexLock l(&shared_->mu);
  return shared_->reconnects;
}

size_t MemTransportPair::queued_to_listener() {
  absl::MutexLock l(&shared_->mu);
  return shared_->to_listener.size();
}

size_t MemTransportPair::queued_to_connector() {
  absl::MutexLock l(&shared_->mu);
  return shared_->to_connector.size();
}

}  // namespace rdf::testing
