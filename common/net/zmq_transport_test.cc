// ZmqTransport over loopback with CURVE: what the receiver and the monitor
// rely on (admitted keys only, the sender's key on each message, a REQ
// client's envelope) and what the extractor relies on (a refused handshake
// reported as a link event).
#include "common/net/zmq_transport.h"

#include <unistd.h>

#include <atomic>
#include <zmq.hpp>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/net/curve_keys.h"
#include "common/testing/free_port.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdf::net {
namespace {

using ::rdf::testing::StatusIs;
using ::testing::HasSubstr;

using ::rdf::testing::FreePort;

class ZmqTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(server_keys_, curve::GenerateKeyPair());
    ASSERT_OK_AND_ASSIGN(client_keys_, curve::GenerateKeyPair());
    endpoint_ = absl::StrCat("tcp://127.0.0.1:", FreePort());
  }
  void Listen(bool request_envelope = false) {
    ZmqListenOptions o;
    o.endpoint = endpoint_;
    o.secret_key = server_keys_.secret_key;
    o.allowed_keys = {client_keys_.public_key};
    o.zap_domain = "rdf";
    o.request_envelope = request_envelope;
    o.on_key_refused = [this](const std::string&, const std::string&) { ++refused_; };
    ASSERT_OK_AND_ASSIGN(server_, ZmqTransport::Listen(o));
  }
  void Connect(const curve::KeyPair& keys) {
    ZmqConnectOptions o;
    o.endpoint = endpoint_;
    o.keys = [this, keys]() -> absl::StatusOr<CurveClientKeys> {
      return CurveClientKeys{server_keys_.public_key, keys.public_key, keys.secret_key};
    };
    ASSERT_OK_AND_ASSIGN(client_, ZmqTransport::Connect(o));
  }
  // The next message's body at `t`, "none" when nothing comes in 5 s.
  static std::string Body(Transport& t, Message* got = nullptr) {
    absl::StatusOr<std::optional<Message>> m = t.Recv(absl::Seconds(5));
    if (!m.ok()) return m.status().ToString();
    if (!m->has_value()) return "none";
    if (got != nullptr) *got = **m;
    return (*m)->body;
  }

  curve::KeyPair server_keys_, client_keys_;
  std::string endpoint_;
  std::atomic<int> refused_{0};
  std::unique_ptr<ZmqTransport> server_, client_;
};

TEST_F(ZmqTransportTest, AdmittedClientAndServerExchangeMessages) {
  Listen();
  Connect(client_keys_);
  ASSERT_OK(client_->Send("", "hello"));
  Message from;
  EXPECT_EQ(Body(*server_, &from), "hello");
  EXPECT_EQ(from.sender_key, client_keys_.public_key);
  ASSERT_OK(server_->Send(from.peer, "welcome"));
  EXPECT_EQ(Body(*client_), "welcome");
}

TEST_F(ZmqTransportTest, UnknownClientKeyIsRefusedAndReported) {
  Listen();
  ASSERT_OK_AND_ASSIGN(curve::KeyPair stranger, curve::GenerateKeyPair());
  Connect(stranger);
  ASSERT_OK(client_->Send("", "hello"));
  EXPECT_EQ(server_->Recv(absl::Seconds(1)).value(), std::nullopt);
  EXPECT_GE(refused_.load(), 1);
  bool auth_failed = false;
  for (int i = 0; i < 50 && !auth_failed; ++i) {
    auth_failed = client_->TakeLinkEvents().auth_failed;
    if (!auth_failed) absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(auth_failed);
}

TEST_F(ZmqTransportTest, ReconnectReadsTheKeysAgain) {
  Listen();
  ASSERT_OK_AND_ASSIGN(curve::KeyPair stranger, curve::GenerateKeyPair());
  curve::KeyPair on_disk = stranger;
  ZmqConnectOptions o;
  o.endpoint = endpoint_;
  o.keys = [&]() -> absl::StatusOr<CurveClientKeys> {
    return CurveClientKeys{server_keys_.public_key, on_disk.public_key, on_disk.secret_key};
  };
  ASSERT_OK_AND_ASSIGN(client_, ZmqTransport::Connect(o));
  ASSERT_OK(client_->Send("", "refused"));
  EXPECT_EQ(server_->Recv(absl::Seconds(1)).value(), std::nullopt);
  on_disk = client_keys_;  // the operator fixes the key file
  ASSERT_OK(client_->Reconnect());
  ASSERT_OK(client_->Send("", "hello"));
  EXPECT_EQ(Body(*server_), "hello");
}

TEST_F(ZmqTransportTest, PortInUseIsUnavailable) {
  Listen();
  std::unique_ptr<ZmqTransport> first = std::move(server_);
  ZmqListenOptions o;
  o.endpoint = endpoint_;
  o.secret_key = server_keys_.secret_key;
  EXPECT_THAT(ZmqTransport::Listen(o),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("cannot listen on " + endpoint_)));
}

TEST_F(ZmqTransportTest, RequestClientGetsItsReplyInTheEnvelope) {
  Listen(/*request_envelope=*/true);
  zmq::context_t ctx;
  zmq::socket_t req(ctx, zmq::socket_type::req);
  req.set(zmq::sockopt::curve_serverkey, server_keys_.public_key);
  req.set(zmq::sockopt::curve_publickey, client_keys_.public_key);
  req.set(zmq::sockopt::curve_secretkey, client_keys_.secret_key);
  req.set(zmq::sockopt::linger, 0);
  req.set(zmq::sockopt::rcvtimeo, 5000);
  req.connect(endpoint_);
  req.send(zmq::str_buffer("status?"), zmq::send_flags::none);
  Message from;
  EXPECT_EQ(Body(*server_, &from), "status?");
  EXPECT_EQ(from.sender_key, client_keys_.public_key);
  ASSERT_OK(server_->Send(from.peer, "NORMAL"));
  zmq::message_t reply;
  ASSERT_TRUE(req.recv(reply));
  EXPECT_EQ(reply.to_string(), "NORMAL");
}

}  // namespace
}  // namespace rdf::net
