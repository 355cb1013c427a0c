// The extractor's side of the audit session (docs/protocol.md), in-process:
// tmf's part is played by a trail writer appending audit to a temporary
// folder, the extractor runs on a thread, and the test plays the receiver
// through an in-memory transport, one message at a time.
#include "extractor/extractor.h"

#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "audit.pb.h"
#include "common/state/audit_record.h"
#include "common/testing/mem_transport.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "common/testing/test_config.h"
#include "common/trail/writer.h"
#include "common/wire/wire.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdf::extractor {
namespace {

class ExtractorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::rdf::testing::MakeTestDir("extractor_test");
    // A window of 2 batches of 4096 bytes; no heartbeats during a test.
    auto cfg = ::rdf::testing::TwoNodeConfig(dir_, R"(
      volumes { name: "$DATA01" }
      extractor { batch_bytes: 4096 window: 2 heartbeat_ms: 600000 batch_wait_ms: 5 }
    )");
    ASSERT_OK(cfg.status());
    cfg_ = std::make_unique<config::Config>(*std::move(cfg));
    node_ = cfg_->FindNode("primary");
    std::filesystem::create_directories(config::LockDir(*node_));
    trail::WriterOptions w;
    w.dir = config::AuditDir(*node_);
    w.name = "MAT";
    auto writer = trail::TrailWriter::Open(w);
    ASSERT_OK(writer.status());
    audit_ = *std::move(writer);

    ExtractorOptions o;
    o.config = cfg_.get();
    o.node = "primary";
    o.transport = link_.connector();
    auto e = Extractor::Open(o);
    ASSERT_OK(e.status());
    extractor_ = *std::move(e);
    thread_ = std::thread([this] { run_status_ = extractor_->Run(&stop_); });
  }
  void TearDown() override {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    EXPECT_OK(run_status_);
    extractor_.reset();
    audit_.reset();
    ::rdf::testing::RemoveTestDir(dir_);
  }

  // tmf commits a transaction: one DATA record of about `bytes` on $DATA01,
  // then its COMMIT, made durable.
  void Commit(uint64_t txid, size_t bytes = 10) {
    for (proto::RecordType type : {proto::DATA, proto::COMMIT}) {
      proto::AuditRecord r;
      r.set_version(kAuditRecordVersion);
      r.set_type(type);
      r.set_txid(txid);
      r.set_time_us(1000 + txid);
      if (type == proto::DATA) {
        r.set_volume("$DATA01");
        r.set_file("F");
        r.set_key(absl::StrCat(txid));
        r.set_after(std::string(bytes, 'v'));
        r.set_op(proto::INSERT);
      }
      ASSERT_OK(audit_->Append(++asn_, static_cast<uint8_t>(type), EncodeAuditPayload(r), r.time_us()));
    }
    ASSERT_OK(audit_->Sync());
  }

  // The extractor's next message as text ("none" when nothing comes in
  // time): "hello", "batch seq=1 from=0 through=2 records=2", "heartbeat".
  std::string Next(absl::Duration timeout = absl::Seconds(10)) {
    absl::StatusOr<std::optional<net::Message>> m = link_.listener()->Recv(timeout);
    if (!m.ok()) return m.status().ToString();
    if (!m->has_value()) return "none";
    peer_ = (*m)->peer;
    absl::StatusOr<proto::WireMessage> w = wire::Decode((*m)->body, 1u << 20);
    if (!w.ok()) return w.status().ToString();
    switch (w->body_case()) {
      case proto::WireMessage::kHello:
        nonce_ = w->hello().nonce();
        return "hello";
      case proto::WireMessage::kBatch:
        return absl::StrCat("batch seq=", w->batch().seq(), " from=", w->batch().from_asn(),
                            " through=", w->batch().read_through_asn(),
                            " records=", w->batch().records_size());
      case proto::WireMessage::kHeartbeat:
        return "heartbeat";
      default:
        return w->ShortDebugString();
    }
  }

  // What the receiver answers.
  void Reply(proto::WireMessage m) { ASSERT_OK(link_.listener()->Send(peer_, wire::Encode(m))); }
  void Welcome(uint64_t restart_asn, uint64_t next_seq, std::optional<uint64_t> nonce = std::nullopt) {
    proto::WireMessage m;
    m.mutable_welcome()->set_restart_asn(restart_asn);
    m.mutable_welcome()->set_next_seq(next_seq);
    m.mutable_welcome()->set_save_point_asn(restart_asn - 1);
    m.mutable_welcome()->set_nonce(nonce.value_or(nonce_));
    Reply(m);
  }
  void Ack(uint64_t seq, uint64_t save_point_asn) {
    proto::WireMessage m;
    m.mutable_ack()->set_seq(seq);
    m.mutable_ack()->set_save_point_asn(save_point_asn);
    Reply(m);
  }
  void Refuse(proto::Refuse::Reason reason) {
    proto::WireMessage m;
    m.mutable_refuse()->set_reason(reason);
    m.mutable_refuse()->set_text("refused by the test");
    Reply(m);
  }

  std::string dir_;
  std::unique_ptr<config::Config> cfg_;
  const proto::NodeConfig* node_ = nullptr;
  std::unique_ptr<trail::TrailWriter> audit_;
  uint64_t asn_ = 0;
  ::rdf::testing::MemTransportPair link_;
  std::unique_ptr<Extractor> extractor_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  absl::Status run_status_;
  std::string peer_;
  uint64_t nonce_ = 0;
};

TEST_F(ExtractorTest, ShipsFromWhereTheWelcomeSays) {
  Commit(1);
  Commit(2);
  EXPECT_EQ(Next(), "hello");
  Welcome(/*restart_asn=*/3, /*next_seq=*/7);
  EXPECT_EQ(Next(), "batch seq=7 from=2 through=4 records=2");
}

TEST_F(ExtractorTest, WindowHoldsUntilAnAcknowledgement) {
  for (uint64_t t = 1; t <= 4; ++t) Commit(t, 2500);  // one transaction a batch
  EXPECT_EQ(Next(), "hello");
  Welcome(1, 1);
  EXPECT_EQ(Next(), "batch seq=1 from=0 through=2 records=2");
  EXPECT_EQ(Next(), "batch seq=2 from=2 through=4 records=2");
  EXPECT_EQ(Next(absl::Milliseconds(500)), "none");
  Ack(1, 2);
  EXPECT_EQ(Next(), "batch seq=3 from=4 through=6 records=2");
}

TEST_F(ExtractorTest, ResendsAfterReconnect) {
  Commit(1, 2500);
  Commit(2, 2500);
  EXPECT_EQ(Next(), "hello");
  Welcome(1, 1);
  EXPECT_EQ(Next(), "batch seq=1 from=0 through=2 records=2");
  EXPECT_EQ(Next(), "batch seq=2 from=2 through=4 records=2");
  link_.Disconnect();  // both batches lost unacknowledged
  EXPECT_EQ(Next(), "hello");
  Welcome(1, 1);
  EXPECT_EQ(Next(), "batch seq=1 from=0 through=2 records=2");
  EXPECT_EQ(Next(), "batch seq=2 from=2 through=4 records=2");
}

TEST_F(ExtractorTest, StaleWelcomeIsIgnored) {
  Commit(1);
  EXPECT_EQ(Next(), "hello");
  Welcome(1, 1, /*nonce=*/nonce_ + 1);  // answers some earlier Hello
  EXPECT_EQ(Next(), "hello");           // still synchronizing
  Welcome(1, 1);
  EXPECT_EQ(Next(), "batch seq=1 from=0 through=2 records=2");
}

TEST_F(ExtractorTest, ResyncRefusalStartsAgainWithHello) {
  Commit(1);
  EXPECT_EQ(Next(), "hello");
  Welcome(1, 1);
  EXPECT_EQ(Next(), "batch seq=1 from=0 through=2 records=2");
  Refuse(proto::Refuse::RESYNC);
  EXPECT_EQ(Next(), "hello");
  Welcome(1, 1);
  EXPECT_EQ(Next(), "batch seq=1 from=0 through=2 records=2");
}

TEST_F(ExtractorTest, FencedExtractorStopsShipping) {
  Commit(1);
  EXPECT_EQ(Next(), "hello");
  Refuse(proto::Refuse::FENCED);
  Commit(2);
  EXPECT_EQ(Next(absl::Milliseconds(2500)), "none");  // no Hello (1 s) and no batch
}

TEST_F(ExtractorTest, FailedHandshakeConnectsAnewAfterAPause) {
  EXPECT_EQ(Next(), "hello");
  link_.FailAuth();
  absl::SleepFor(absl::Milliseconds(4000));
  EXPECT_EQ(link_.reconnects(), 0);  // libzmq would not try again; the extractor waits 5 s
  absl::SleepFor(absl::Milliseconds(2000));
  EXPECT_EQ(link_.reconnects(), 1);
  EXPECT_EQ(Next(), "hello");
}

}  // namespace
}  // namespace rdf::extractor
