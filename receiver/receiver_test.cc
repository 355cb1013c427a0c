// The receiver's side of the audit session (docs/protocol.md), in-process:
// the receiver runs on a thread with its image trails on a MemFileSystem,
// and the test plays the extractor through an in-memory transport, one
// message and one reply at a time.
#include "receiver/receiver.h"

#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "audit.pb.h"
#include "common/state/audit_record.h"
#include "common/state/takeover_state.h"
#include "common/testing/mem_file_system.h"
#include "common/testing/mem_transport.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "common/testing/test_config.h"
#include "common/wire/wire.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "receiver/test_backup.h"

namespace rdf::receiver {
namespace {

class ReceiverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(TestBackup b, MakeTestBackup("receiver_test"));
    dir_ = b.dir;
    cfg_ = std::move(b.cfg);
    node_ = b.node;
    // The lock file is a real file too.
    std::filesystem::create_directories(config::LockDir(*node_));
    Start();
  }
  void TearDown() override {
    Stop();
    ::rdf::testing::RemoveTestDir(dir_);
  }

  void Start() {
    ReceiverOptions o;
    o.config = cfg_.get();
    o.node = "backup";
    o.fs = &fs_;
    o.transport = link_.listener();
    auto r = Receiver::Open(o);
    ASSERT_OK(r.status());
    receiver_ = *std::move(r);
    stop_ = false;
    thread_ = std::thread([this] { run_status_ = receiver_->Run(&stop_); });
  }
  void Stop() {
    if (!thread_.joinable()) return;
    stop_ = true;
    thread_.join();
    EXPECT_OK(run_status_);
    receiver_.reset();
  }

  // What the extractor sends.
  void Send(proto::WireMessage m) { ASSERT_OK(link_.connector()->Send("", wire::Encode(m))); }
  void Hello() {
    proto::WireMessage m;
    m.mutable_hello()->set_node("primary");
    m.mutable_hello()->set_nonce(++nonce_);
    Send(m);
  }
  // Batch `seq` holding one transaction (DATA on each volume, COMMIT),
  // continuing from `from_asn` (default: the end of the previous batch).
  void Batch(uint64_t seq, std::optional<uint64_t> from_asn = std::nullopt) {
    proto::WireMessage m;
    proto::Batch* b = m.mutable_batch();
    b->set_seq(seq);
    b->set_from_asn(from_asn.value_or(asn_));
    if (from_asn.has_value()) asn_ = *from_asn;
    const uint64_t txid = seq;
    for (const char* vol : {"$DATA01", "$DATA02", ""}) {
      proto::AuditRecord r;
      r.set_version(kAuditRecordVersion);
      r.set_txid(txid);
      r.set_type(*vol ? proto::DATA : proto::COMMIT);
      if (*vol) {
        r.set_volume(vol);
        r.set_file("F");
        r.set_key(absl::StrCat(txid));
        r.set_after("v");
        r.set_op(proto::INSERT);
      }
      proto::WireRecord* w = b->add_records();
      w->set_asn(++asn_);
      w->set_type(r.type());
      w->set_txid(txid);
      w->set_volume(r.volume());
      w->set_payload(EncodeAuditPayload(r));
    }
    b->set_read_through_asn(asn_);
    Send(m);
  }
  // A session: Hello, and the Welcome's text.
  std::string Connect() {
    Hello();
    return Reply();
  }
  void Heartbeat(uint64_t next_seq) {
    proto::WireMessage m;
    m.mutable_heartbeat()->set_next_seq(next_seq);
    m.mutable_heartbeat()->set_from_asn(asn_);
    m.mutable_heartbeat()->set_read_through_asn(asn_);
    Send(m);
  }

  // The receiver's next reply as text, "none" when nothing comes in time.
  std::string Reply(absl::Duration timeout = absl::Seconds(10)) {
    absl::StatusOr<std::optional<net::Message>> m = link_.connector()->Recv(timeout);
    if (!m.ok()) return m.status().ToString();
    if (!m->has_value()) return "none";
    absl::StatusOr<proto::WireMessage> w = wire::Decode((*m)->body, 1u << 20);
    if (!w.ok()) return w.status().ToString();
    switch (w->body_case()) {
      case proto::WireMessage::kWelcome:
        return absl::StrCat("welcome restart_asn=", w->welcome().restart_asn(),
                            " next_seq=", w->welcome().next_seq(),
                            w->welcome().nonce() == nonce_ ? "" : " (other nonce)");
      case proto::WireMessage::kAck:
        return absl::StrCat("ack seq=", w->ack().seq(), " save_point=", w->ack().save_point_asn());
      case proto::WireMessage::kRefuse:
        return absl::StrCat("refuse ", proto::Refuse::Reason_Name(w->refuse().reason()), ": ",
                            w->refuse().text());
      default:
        return w->ShortDebugString();
    }
  }

  std::string dir_;
  std::unique_ptr<config::Config> cfg_;
  const proto::NodeConfig* node_ = nullptr;
  MemFileSystem fs_;
  ::rdf::testing::MemTransportPair link_;
  std::unique_ptr<Receiver> receiver_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  absl::Status run_status_;
  uint64_t nonce_ = 0;
  uint64_t asn_ = 0;  // the last ASN sent
};

TEST_F(ReceiverTest, HelloIsWelcomedFromTheStart) {
  EXPECT_EQ(Connect(), "welcome restart_asn=1 next_seq=1");
}

TEST_F(ReceiverTest, BatchIsAcknowledgedWithItsSavePoint) {
  Connect();
  Batch(1);
  EXPECT_EQ(Reply(), "ack seq=1 save_point=3");
}

TEST_F(ReceiverTest, DuplicateBatchIsAcknowledgedAgainAndNotWritten) {
  Connect();
  Batch(1);
  EXPECT_EQ(Reply(), "ack seq=1 save_point=3");
  Batch(1, /*from_asn=*/0);
  EXPECT_EQ(Reply(), "ack seq=1 save_point=3");
  Batch(2);  // continues from ASN 3: the duplicate took no ASNs
  EXPECT_EQ(Reply(), "ack seq=2 save_point=6");
}

TEST_F(ReceiverTest, GapIsRefusedWithResync) {
  Connect();
  Batch(2);
  EXPECT_EQ(Reply(), "refuse RESYNC: expected batch 1");
  Batch(1, /*from_asn=*/0);  // nothing of batch 2 was kept
  EXPECT_EQ(Reply(), "ack seq=1 save_point=3");
}

TEST_F(ReceiverTest, BatchNotContinuingWhatWasReceivedIsRefusedWithResync) {
  Connect();
  Batch(1);
  Reply();
  Batch(2, /*from_asn=*/5);
  EXPECT_THAT(Reply(), ::testing::StartsWith("refuse RESYNC: "));
}

TEST_F(ReceiverTest, HeartbeatAheadOfTheReceiverAsksForResync) {
  Connect();
  Heartbeat(/*next_seq=*/3);
  EXPECT_EQ(Reply(), "refuse RESYNC: expected batch 1");
}

TEST_F(ReceiverTest, MessageThatDoesNotParseIsRefusedAsMalformed) {
  ASSERT_OK(link_.connector()->Send("", "not a wire message"));
  EXPECT_THAT(Reply(), ::testing::StartsWith("refuse MALFORMED: "));
}

TEST_F(ReceiverTest, NewSessionResumesAfterWhatWasReceived) {
  Connect();
  Batch(1);
  Reply();
  link_.Disconnect();
  EXPECT_EQ(Connect(), "welcome restart_asn=4 next_seq=2");
}

TEST_F(ReceiverTest, RestartedReceiverResumesFromItsSavePoint) {
  Connect();
  Batch(1);
  Reply();
  Stop();
  Start();
  EXPECT_EQ(Connect(), "welcome restart_asn=4 next_seq=2");
}

TEST_F(ReceiverTest, OldPrimaryIsFencedAfterTakeover) {
  ASSERT_OK(WriteTakeoverEpoch(&fs_, *node_, {1, 0}));
  Hello();
  EXPECT_EQ(Reply(), "refuse FENCED: this backup has taken over; audit is refused");
  Batch(1);
  EXPECT_EQ(Reply(), "refuse FENCED: this backup has taken over; audit is refused");
}

}  // namespace
}  // namespace rdf::receiver
