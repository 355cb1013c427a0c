// In-process tests of CURVE admission: a ROUTER CURVE server (zap_domain
// "rdf") with a ZapHandler and a SocketMonitor, and DEALER clients with an
// allowed key, an unknown key, and no CURVE at all. Every wait is bounded.
#include "common/net/zap_handler.h"

#include <chrono>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/net/curve_keys.h"
#include "common/net/socket_monitor.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdf::curve {
namespace {

using ::rdf::testing::StatusIs;
using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(10);

struct Decision {
  std::string key;
  std::string address;
  bool admitted;
};

struct MonitorEvent {
  int event;
  int value;
};

// What the handler's and the monitor's threads report, read by the test.
class Recorder {
 public:
  void Add(Decision d) {
    absl::MutexLock l(&mu_);
    decisions_.push_back(std::move(d));
  }
  void Add(MonitorEvent e) {
    absl::MutexLock l(&mu_);
    events_.push_back(e);
  }
  // Waits (bounded) for a decision about `key`; nullopt on timeout.
  std::optional<Decision> WaitForDecision(const std::string& key) {
    absl::MutexLock l(&mu_);
    std::optional<Decision> found;
    auto seen = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (const Decision& d : decisions_) {
        if (d.key == key) found = d;
      }
      return found.has_value();
    };
    mu_.AwaitWithTimeout(absl::Condition(&seen), kWait);
    return found;
  }
  // Waits (bounded) for a monitor event whose type is in `mask`.
  std::optional<MonitorEvent> WaitForEvent(int mask) {
    absl::MutexLock l(&mu_);
    std::optional<MonitorEvent> found;
    auto seen = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (const MonitorEvent& e : events_) {
        if (e.event & mask) found = e;
      }
      return found.has_value();
    };
    mu_.AwaitWithTimeout(absl::Condition(&seen), kWait);
    return found;
  }
  size_t decisions() {
    absl::MutexLock l(&mu_);
    return decisions_.size();
  }

 private:
  absl::Mutex mu_;
  std::vector<Decision> decisions_ ABSL_GUARDED_BY(mu_);
  std::vector<MonitorEvent> events_ ABSL_GUARDED_BY(mu_);
};

class ZapHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_keys_ = Keys();
    allowed_ = Keys();
    stranger_ = Keys();
    ASSERT_OK_AND_ASSIGN(zap_, ZapHandler::Start(ctx_, {allowed_.public_key},
                                                 [this](const std::string& key,
                                                        const std::string& address, bool ok) {
                                                   recorder_.Add(Decision{key, address, ok});
                                                 }));
    server_.set(zmq::sockopt::linger, 0);
    server_.set(zmq::sockopt::zap_domain, kZapDomain);
    server_.set(zmq::sockopt::curve_server, true);
    server_.set(zmq::sockopt::curve_secretkey, server_keys_.secret_key);
    server_.set(zmq::sockopt::rcvtimeo, 200);
    ASSERT_OK_AND_ASSIGN(
        monitor_, SocketMonitor::Start(ctx_, server_, 0, [this](int event, int value,
                                                                const std::string&) {
          recorder_.Add(MonitorEvent{event, value});
        }));
    server_.bind("tcp://127.0.0.1:*");
    endpoint_ = server_.get(zmq::sockopt::last_endpoint);
  }

  static KeyPair Keys() {
    absl::StatusOr<KeyPair> k = GenerateKeyPair();
    EXPECT_OK(k);
    return k.ok() ? *k : KeyPair{};
  }

  // A DEALER connected to the server; CURVE with `keys` unless nullptr.
  // A client of the server; `connect` false leaves connecting to the test
  // (after it has attached a monitor that must see the handshake).
  zmq::socket_t Client(const KeyPair* keys, bool connect = true) {
    zmq::socket_t s(ctx_, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 0);
    s.set(zmq::sockopt::rcvtimeo, 200);
    if (keys != nullptr) {
      s.set(zmq::sockopt::curve_serverkey, server_keys_.public_key);
      s.set(zmq::sockopt::curve_publickey, keys->public_key);
      s.set(zmq::sockopt::curve_secretkey, keys->secret_key);
    }
    if (connect) s.connect(endpoint_);
    return s;
  }

  // The next message at the server within `limit`: [routing id, body...].
  std::vector<zmq::message_t> ServerReceive(absl::Duration limit) {
    const absl::Time deadline = absl::Now() + limit;
    std::vector<zmq::message_t> parts;
    while (parts.empty() && absl::Now() < deadline) {
      if (!zmq::recv_multipart(server_, std::back_inserter(parts))) parts.clear();
    }
    return parts;
  }

  // Members are destroyed in reverse order: sockets and threads before the
  // context.
  zmq::context_t ctx_;
  KeyPair server_keys_, allowed_, stranger_;
  Recorder recorder_;
  std::unique_ptr<ZapHandler> zap_;
  zmq::socket_t server_{ctx_, zmq::socket_type::router};
  std::unique_ptr<SocketMonitor> monitor_;
  std::string endpoint_;
};

TEST_F(ZapHandlerTest, AllowedClientExchangesMessagesAndIsNamedByUserId) {
  zmq::socket_t client = Client(&allowed_);
  client.send(zmq::str_buffer("hello"), zmq::send_flags::none);
  std::vector<zmq::message_t> parts = ServerReceive(kWait);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[1].to_string(), "hello");
  EXPECT_EQ(std::string(parts[1].gets("User-Id")), allowed_.public_key);

  server_.send(parts[0], zmq::send_flags::sndmore);
  server_.send(zmq::str_buffer("welcome"), zmq::send_flags::none);
  zmq::message_t reply;
  std::optional<size_t> got;
  for (int i = 0; i < 50 && !got; ++i) got = client.recv(reply);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(reply.to_string(), "welcome");

  std::optional<Decision> d = recorder_.WaitForDecision(allowed_.public_key);
  ASSERT_TRUE(d.has_value());
  EXPECT_TRUE(d->admitted);
  EXPECT_EQ(d->address, "127.0.0.1");
  EXPECT_EQ(zap_->admitted(), 1u);
}

TEST_F(ZapHandlerTest, UnknownKeyIsRefusedAndNeverDelivers) {
  // Connected only once its monitor runs: a handshake refused before that
  // was never seen (this test failed under load, in the suite).
  zmq::socket_t client = Client(&stranger_, /*connect=*/false);
  Recorder client_side;  // what the extractor sees: event 942
  ASSERT_OK_AND_ASSIGN(auto client_monitor,
                       SocketMonitor::Start(ctx_, client, ZMQ_EVENT_HANDSHAKE_FAILED_AUTH,
                                            [&](int event, int value, const std::string&) {
                                              client_side.Add(MonitorEvent{event, value});
                                            }));
  client.connect(endpoint_);
  client.send(zmq::str_buffer("let me in"), zmq::send_flags::none);
  std::optional<Decision> d = recorder_.WaitForDecision(stranger_.public_key);
  ASSERT_TRUE(d.has_value());
  EXPECT_FALSE(d->admitted);
  std::optional<MonitorEvent> e = recorder_.WaitForEvent(ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->value, 400);
  EXPECT_TRUE(ServerReceive(absl::Seconds(1)).empty());
  std::optional<MonitorEvent> c = client_side.WaitForEvent(ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->value, 400);
  EXPECT_GE(zap_->refused(), 1u);
  EXPECT_EQ(zap_->admitted(), 0u);
}

TEST_F(ZapHandlerTest, ClientWithoutCurveIsRefusedBeforeZap) {
  zmq::socket_t client = Client(nullptr);
  client.send(zmq::str_buffer("plain"), zmq::send_flags::none);
  std::optional<MonitorEvent> e = recorder_.WaitForEvent(
      ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL);
  ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(ServerReceive(absl::Seconds(1)).empty());
  EXPECT_EQ(zap_->admitted(), 0u);
}

TEST_F(ZapHandlerTest, AllowedKeysCanBeReplacedAtRunTime) {
  ASSERT_OK(zap_->SetAllowedKeys({stranger_.public_key}));
  zmq::socket_t newcomer = Client(&stranger_);
  newcomer.send(zmq::str_buffer("now allowed"), zmq::send_flags::none);
  std::vector<zmq::message_t> parts = ServerReceive(kWait);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[1].to_string(), "now allowed");

  zmq::socket_t former = Client(&allowed_);
  former.send(zmq::str_buffer("still here?"), zmq::send_flags::none);
  std::optional<Decision> d = recorder_.WaitForDecision(allowed_.public_key);
  ASSERT_TRUE(d.has_value());
  EXPECT_FALSE(d->admitted);
  EXPECT_TRUE(ServerReceive(absl::Seconds(1)).empty());
}

TEST_F(ZapHandlerTest, BadKeysAreRejected) {
  EXPECT_THAT(zap_->SetAllowedKeys({"short"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("Z85")));
  EXPECT_EQ(zap_->allowed_keys(), std::set<std::string>{allowed_.public_key});
}

TEST_F(ZapHandlerTest, SecondHandlerInOneContextIsAlreadyExists) {
  EXPECT_THAT(ZapHandler::Start(ctx_, {}).status(),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr(kZapEndpoint)));
}

TEST_F(ZapHandlerTest, DestructionIsPrompt) {
  const absl::Time start = absl::Now();
  zap_.reset();
  monitor_.reset();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST(ZapHandlerContextTest, ContextShutdownEndsTheThread) {
  zmq::context_t ctx;
  ASSERT_OK_AND_ASSIGN(auto zap, ZapHandler::Start(ctx, {}));
  ctx.shutdown();
  const absl::Time start = absl::Now();
  zap.reset();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST(SocketMonitorTest, ReportsConnectedOnTheClientSide) {
  zmq::context_t ctx;
  zmq::socket_t server(ctx, zmq::socket_type::router);
  server.set(zmq::sockopt::linger, 0);
  server.bind("tcp://127.0.0.1:*");
  zmq::socket_t client(ctx, zmq::socket_type::dealer);
  client.set(zmq::sockopt::linger, 0);
  Recorder recorder;
  ASSERT_OK_AND_ASSIGN(auto monitor,
                       SocketMonitor::Start(ctx, client, ZMQ_EVENT_CONNECTED,
                                            [&](int event, int value, const std::string&) {
                                              recorder.Add(MonitorEvent{event, value});
                                            }));
  client.connect(server.get(zmq::sockopt::last_endpoint));
  EXPECT_TRUE(recorder.WaitForEvent(ZMQ_EVENT_CONNECTED).has_value());
  monitor.reset();
}

TEST(SocketMonitorTest, EmptyCallbackIsInvalidArgument) {
  zmq::context_t ctx;
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  EXPECT_THAT(SocketMonitor::Start(ctx, s, 0, nullptr).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("callback")));
}

TEST(SocketMonitorTest, EventNames) {
  EXPECT_EQ(MonitorEventName(ZMQ_EVENT_HANDSHAKE_FAILED_AUTH), "HANDSHAKE_FAILED_AUTH");
  EXPECT_EQ(MonitorEventName(ZMQ_EVENT_ACCEPTED), "ACCEPTED");
  EXPECT_EQ(MonitorEventName(0x8000), "EVENT_0x8000");
  EXPECT_EQ(ProtocolErrorName(ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH), "MECHANISM_MISMATCH");
}

}  // namespace
}  // namespace rdf::curve
