#include "tmf/store.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/events/catalog.h"
#include "common/events/log.h"
#include "common/state/audit_record.h"
#include "common/state/pin_file.h"
#include "common/state/status_file.h"
#include "common/testing/mem_file_system.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "common/trail/reader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdf::tmf {
namespace {

using ::rdf::testing::IsOk;
using ::rdf::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Optional;

class StoreTest : public ::testing::Test {
 public:
  void SetUp() override { dir_ = ::rdf::testing::MakeTestDir("tmf_test"); }
  void TearDown() override {
    store_.reset();
    ::rdf::testing::RemoveTestDir(dir_.string());
  }

  // Opens (or reopens) the primary with `extra` appended to the config.
  // The volumes (copy mode: they are small) are copied every second, so
  // that the audit their checkpoints hold is released as soon as these
  // tests expect.
  void Open(std::string extra = "") { ASSERT_OK(TryOpen(std::move(extra))); }
  absl::Status TryOpen(std::string extra = "") {
    store_.reset();
    const size_t tmf = extra.find("tmf {");
    if (tmf == std::string::npos) {
      extra += " tmf { checkpoint_copy_ms: 1000 }";
    } else if (extra.find("checkpoint_") == std::string::npos) {
      extra.insert(tmf + 5, " checkpoint_copy_ms: 1000");
    }
    std::string text = absl::StrCat(R"(
      system: "t"
      nodes { name: "primary" role: PRIMARY host: "127.0.0.1" data_dir: "p" key_file: "p.key" }
      nodes { name: "backup" role: BACKUP host: "127.0.0.1" audit_port: 17999 data_dir: "b" key_file: "b.key" }
      volumes { name: "$DATA01" }
      volumes { name: "$DATA02" }
    )", extra.find("lmdb") == std::string::npos ? "lmdb { map_bytes: 16777216 }" : "",
        extra);
    auto cfg = config::Parse(text, (dir_ / "rdf.textproto").string());
    if (!cfg.ok()) return cfg.status();
    cfg_ = std::make_unique<config::Config>(*std::move(cfg));
    StoreOptions o;
    o.config = cfg_.get();
    o.node = "primary";
    o.fs = fs_;
    auto s = Store::Open(o);
    if (!s.ok()) return s.status();
    store_ = *std::move(s);
    for (const char* v : {"$DATA01", "$DATA02"}) {
      if (!store_->FileExists(v, "F")) {
        absl::Status c = store_->CreateFile(v, "F");
        if (!c.ok()) return c;
      }
    }
    return absl::OkStatus();
  }

  // Runs `body` in a child process that is then SIGKILLed, as a crash:
  // nothing is closed, synced or flushed after it. The child starts with
  // no store open.
  void CrashAfter(const std::function<void()>& body) {
    store_.reset();
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      body();
      if (::testing::Test::HasFailure()) _exit(1);
      raise(SIGKILL);
      _exit(2);
    }
    int st = 0;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
        << "the child failed before the crash (exit " << WEXITSTATUS(st) << ")";
  }

  // Transactions in the audit trail with DATA and no COMMIT or ABORT.
  std::vector<uint64_t> WithoutOutcome() {
    trail::ReaderOptions ro;
    ro.dir = (dir_ / "p" / "audit").string();
    ro.name = "MAT";
    auto r = trail::TrailReader::Open(ro);
    if (!r.ok()) return {0};
    std::map<uint64_t, bool> ended;
    while (true) {
      auto rec = (*r)->Next();
      if (!rec.ok() || !rec->has_value()) break;
      auto a = DecodeAuditRecord(**rec);
      if (!a.ok()) break;
      if (a->type() == proto::DATA) ended.try_emplace(a->txid(), false);
      if (a->type() == proto::COMMIT || a->type() == proto::ABORT) ended[a->txid()] = true;
    }
    std::vector<uint64_t> open;
    for (const auto& [txid, done] : ended) {
      if (!done) open.push_back(txid);
    }
    return open;
  }

  absl::Status Put(std::string key, std::string value, std::string vol = "$DATA01") {
    auto t = store_->Begin();
    if (!t.ok()) return t.status();
    absl::Status s = (*t)->Upsert(vol, "F", key, value);
    if (!s.ok()) return s;
    return (*t)->Commit();
  }
  std::string Get(std::string key, std::string vol = "$DATA01") {
    auto v = store_->Read(vol, "F", key);
    if (!v.ok()) return v.status().ToString();
    return v->has_value() ? **v : "MISSING";
  }
  // Every audit record, in order, as "TYPE txid key" strings.
  std::vector<std::string> Audit() {
    trail::ReaderOptions ro;
    ro.dir = (dir_ / "p" / "audit").string();
    ro.name = "MAT";
    auto r = trail::TrailReader::Open(ro);
    std::vector<std::string> out;
    if (!r.ok()) return {r.status().ToString()};
    while (true) {
      auto rec = (*r)->Next();
      if (!rec.ok() || !rec->has_value()) break;
      auto a = DecodeAuditRecord(**rec);
      if (!a.ok()) break;
      out.push_back(absl::StrCat(proto::RecordType_Name(a->type()),
                                 a->compensation() ? "-C" : "", " ", a->key()));
    }
    return out;
  }

  // Put, tried every 100 ms for up to 5 s while housekeeping clears a
  // failed audit sync.
  absl::Status PutOnceTheAuditRecovers(const std::string& key, const std::string& value) {
    absl::Status s = absl::UnavailableError("not tried");
    for (int i = 0; i < 50 && !s.ok(); ++i) {
      absl::SleepFor(absl::Milliseconds(100));
      s = Put(key, value);
    }
    return s;
  }

  // The store opens on a file system that fails on demand (audit files
  // only); it lives as long as the fixture, so the store's threads never
  // outlive it (TearDown closes the store first).
  FaultInjectingFileSystem& UseFaultyAuditFileSystem() {
    faulty_ = std::make_unique<FaultInjectingFileSystem>(FileSystem::Default());
    faulty_->SetPathFilter("audit");
    fs_ = faulty_.get();
    return *faulty_;
  }

  std::filesystem::path dir_;
  std::unique_ptr<FaultInjectingFileSystem> faulty_;
  FileSystem* fs_ = FileSystem::Default();
  std::unique_ptr<config::Config> cfg_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, CommittedWriteIsReadBackAndSurvivesReopen) {
  Open();
  ASSERT_OK(Put("k", "v1"));
  EXPECT_EQ(Get("k"), "v1");
  Open();
  EXPECT_EQ(Get("k"), "v1");
}

TEST_F(StoreTest, AbortLeavesNothingAndWritesCompensationThenAbort) {
  Open();
  auto t = *store_->Begin();
  ASSERT_OK(t->Insert("$DATA01", "F", "a", "1"));
  ASSERT_OK(t->Insert("$DATA02", "F", "b", "2"));
  ASSERT_OK(t->Abort());
  EXPECT_EQ(Get("a"), "MISSING");
  ASSERT_OK(store_->WaitApplied());
  EXPECT_THAT(Audit(), ::testing::ElementsAre("DDL ", "DDL ", "DATA a", "DATA b",
                                              "DATA-C b", "DATA-C a", "ABORT "));
}

TEST_F(StoreTest, TransactionReadsItsOwnWritesOthersSeeThemOnlyAfterCommit) {
  Open();
  auto t = *store_->Begin();
  ASSERT_OK(t->Insert("$DATA01", "F", "k", "mine"));
  EXPECT_THAT(*t->Read("$DATA01", "F", "k"), Optional(std::string("mine")));
  EXPECT_EQ(Get("k"), "MISSING");
  ASSERT_OK(t->Commit());
  EXPECT_EQ(Get("k"), "mine");
}

TEST_F(StoreTest, InsertOfExistingKeyIsError10) {
  Open();
  ASSERT_OK(Put("k", "v"));
  auto t = *store_->Begin();
  EXPECT_THAT(t->Insert("$DATA01", "F", "k", "x"),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("error 10")));
}

TEST_F(StoreTest, UpdateOrDeleteOfMissingKeyIsError11) {
  Open();
  auto t = *store_->Begin();
  EXPECT_THAT(t->Update("$DATA01", "F", "nope", "x"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("error 11")));
  EXPECT_THAT(t->Delete("$DATA01", "F", "nope"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("error 11")));
}

TEST_F(StoreTest, DeleteRemovesKey) {
  Open();
  ASSERT_OK(Put("k", "v"));
  auto t = *store_->Begin();
  ASSERT_OK(t->Delete("$DATA01", "F", "k"));
  ASSERT_OK(t->Commit());
  EXPECT_EQ(Get("k"), "MISSING");
  ASSERT_OK(store_->WaitApplied());
  EXPECT_EQ(Get("k"), "MISSING");
}

TEST_F(StoreTest, UnknownFileOrVolumeIsNotFound) {
  Open();
  auto t = *store_->Begin();
  EXPECT_THAT(t->Insert("$DATA01", "NOFILE", "k", "v"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("create it first")));
  EXPECT_THAT(t->Insert("$NOVOL", "F", "k", "v"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("unknown volume")));
}

TEST_F(StoreTest, CreateExistingFileIsAlreadyExistsAndPurgeRemovesIt) {
  Open();
  EXPECT_THAT(store_->CreateFile("$DATA01", "F"),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("F")));
  ASSERT_OK(Put("k", "v"));
  ASSERT_OK(store_->PurgeFile("$DATA01", "F"));
  EXPECT_FALSE(store_->FileExists("$DATA01", "F"));
  ASSERT_OK(store_->CreateFile("$DATA01", "F"));
  EXPECT_EQ(Get("k"), "MISSING");
}

TEST_F(StoreTest, OversizedTransactionIsRefused) {
  Open("tmf { max_txn_bytes: 1000 }");
  auto t = *store_->Begin();
  EXPECT_THAT(t->Insert("$DATA01", "F", "k", std::string(2000, 'x')),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("max_txn_bytes")));
}

TEST_F(StoreTest, DeadlockAbortsOneTransaction) {
  Open();
  auto t1 = *store_->Begin();
  auto t2 = *store_->Begin();
  ASSERT_OK(t1->Upsert("$DATA01", "F", "a", "1"));
  ASSERT_OK(t2->Upsert("$DATA01", "F", "b", "2"));
  absl::Status s1;
  std::thread th([&] { s1 = t1->Upsert("$DATA01", "F", "b", "1"); });
  absl::SleepFor(absl::Milliseconds(100));
  absl::Status s2 = t2->Upsert("$DATA01", "F", "a", "2");
  EXPECT_THAT(s2, StatusIs(absl::StatusCode::kAborted, HasSubstr("deadlock")));
  ASSERT_OK(t2->Abort());
  th.join();
  ASSERT_OK(s1);
  ASSERT_OK(t1->Commit());
  EXPECT_EQ(Get("b"), "1");
}

TEST_F(StoreTest, LockTimeoutAborts) {
  Open("tmf { lock_timeout_ms: 100 }");
  auto t1 = *store_->Begin();
  auto t2 = *store_->Begin();
  ASSERT_OK(t1->Upsert("$DATA01", "F", "a", "1"));
  EXPECT_THAT(t2->Upsert("$DATA01", "F", "a", "2"),
              StatusIs(absl::StatusCode::kAborted, HasSubstr("lock timeout")));
}

TEST_F(StoreTest, ConcurrentIncrementsLoseNoUpdate) {
  Open();
  ASSERT_OK(Put("counter", "0"));
  constexpr int kThreads = 4, kEach = 100;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      for (int n = 0; n < kEach;) {
        auto t = *store_->Begin();
        auto v = t->ReadForUpdate("$DATA01", "F", "counter");
        if (!v.ok()) { t->Abort().IgnoreError(); continue; }
        int x = std::stoi(**v);
        if (!t->Update("$DATA01", "F", "counter", std::to_string(x + 1)).ok() ||
            !t->Commit().ok()) {
          continue;
        }
        ++n;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(Get("counter"), std::to_string(kThreads * kEach));
}

TEST_F(StoreTest, ReopenRedoesCommittedAuditAndBacksOutOpenTransactions) {
  Open();
  ASSERT_OK(Put("kept", "v"));
  // A transaction with no outcome when the process "dies": leak it.
  auto open = *store_->Begin();
  ASSERT_OK(open->Insert("$DATA02", "F", "lost", "x"));
  open.release();
  Open();
  EXPECT_EQ(Get("kept"), "v");
  EXPECT_EQ(Get("lost", "$DATA02"), "MISSING");
  EXPECT_EQ(store_->recovery().backed_out_transactions, 1u);
  std::vector<std::string> audit = Audit();
  EXPECT_THAT(audit, ::testing::Contains("DATA-C lost"));
  EXPECT_EQ(audit.back(), "ABORT ");
}

TEST_F(StoreTest, TransactionIdsKeepRisingAcrossReopen) {
  Open();
  uint64_t first = (*store_->Begin())->id();
  ASSERT_OK(Put("k", "v"));
  Open();
  EXPECT_GT((*store_->Begin())->id(), first + 1);
}

TEST_F(StoreTest, AuditSegmentsAreRemovedWhenUnneededButKeptForThePin) {
  Open("trail { audit_segment_bytes: 65536 }");
  ASSERT_OK(WritePin(FileSystem::Default(), (dir_ / "p" / "audit").string(), 0));
  for (int i = 0; i < 2000; ++i) ASSERT_OK(Put(absl::StrCat(i), std::string(100, 'x')));
  ASSERT_OK(store_->WaitApplied());
  absl::SleepFor(absl::Milliseconds(1500));
  auto list = [&] {
    return trail::ListSegments(FileSystem::Default(), (dir_ / "p" / "audit").string(), "MAT");
  };
  size_t pinned = list()->size();
  EXPECT_GT(pinned, 4u);
  EXPECT_EQ(list()->front().segment, 1u);
  std::filesystem::remove(dir_ / "p" / "audit" / "pin");
  ASSERT_OK(Put("more", "x"));
  for (int i = 0; i < 50 && list()->size() > 2; ++i) absl::SleepFor(absl::Milliseconds(100));
  EXPECT_LE(list()->size(), 2u);
  Open();
  EXPECT_EQ(Get("1999"), std::string(100, 'x'));
}

TEST_F(StoreTest, CommittedChangesWaitingForTheVolumesStayBounded) {
  // A batch of 4 and an applier that would otherwise wait a minute: the
  // back-pressure both bounds the backlog and hurries the applier.
  Open("tmf { apply_batch_txns: 4 apply_interval_ms: 60000 }");
  for (int i = 0; i < 200; ++i) {
    ASSERT_OK(Put(absl::StrCat(i), "v"));
    ASSERT_LE(store_->stats().pending_commits, 8u);
  }
  EXPECT_EQ(Get("199"), "v");
}

TEST_F(StoreTest, CommittedBytesWaitingForTheVolumesStayBounded) {
  // Large values and an applier that would otherwise wait a minute: memory
  // is bounded in bytes, not only in transactions (invariant 6).
  Open("lmdb { map_bytes: 268435456 } tmf { apply_interval_ms: 60000 }");
  const std::string value(1 << 20, 'v');
  for (int i = 0; i < 48; ++i) {
    ASSERT_OK(Put(absl::StrCat(i), value));
    ASSERT_LE(store_->stats().pending_bytes, (17u << 20));
  }
  EXPECT_EQ(Get("47"), value);
  // One transaction larger than the bound is admitted alone.
  auto t = *store_->Begin();
  for (int j = 0; j < 20; ++j) ASSERT_OK(t->Upsert("$DATA01", "F", absl::StrCat("big", j), value));
  ASSERT_OK(t->Commit());
  EXPECT_EQ(Get("big19"), value);
}

// Values distinct per key and round, 96 KiB: each change holds a before and
// an after image of that size.
std::string Large(int key, int round) {
  return absl::StrCat(std::string(96 << 10, static_cast<char>('a' + (key + round) % 26)), key,
                      ":", round);
}

// Many open transactions with large images (invariant 6): what tmf holds in
// memory stays within tmf.image_memory_bytes however many are open; the
// rest is read back from the audit for the transactions' own reads, the
// readers of committed changes, the applier and the aborts.
TEST_F(StoreTest, ManyOpenTransactionsHoldAtMostTheImageBudgetInMemory) {
  constexpr uint64_t kBudget = 1 << 20;
  Open("lmdb { map_bytes: 268435456 } tmf { image_memory_bytes: 1048576 apply_interval_ms: 60000 }");
  constexpr int kTxns = 60;
  for (int k = 0; k < kTxns; ++k) ASSERT_OK(Put(absl::StrCat(k), Large(k, 0)));
  ASSERT_OK(store_->WaitApplied());
  std::vector<std::unique_ptr<Transaction>> open;
  for (int k = 0; k < kTxns; ++k) {
    open.push_back(*store_->Begin());
    ASSERT_OK(open.back()->Update("$DATA01", "F", absl::StrCat(k), Large(k, 1)));
    ASSERT_OK(open.back()->Update("$DATA01", "F", absl::StrCat(k), Large(k, 2)));
    ASSERT_LE(store_->stats().image_bytes, kBudget) << "after " << k + 1 << " transactions";
  }
  // 60 transactions x 2 changes x 192 KiB of images: most were spilled.
  EXPECT_GT(store_->stats().spilled_images, 90u);
  for (int k = 0; k < kTxns; ++k) {
    auto own = open[k]->Read("$DATA01", "F", absl::StrCat(k));
    ASSERT_OK(own.status());
    ASSERT_EQ(*own, Large(k, 2)) << k;
  }
  // Even keys commit, odd ones abort (their compensations need the spilled
  // before images).
  for (int k = 0; k < kTxns; ++k) {
    ASSERT_OK(k % 2 == 0 ? open[k]->Commit() : open[k]->Abort());
    ASSERT_LE(store_->stats().image_bytes, kBudget);
  }
  open.clear();
  for (int k = 0; k < kTxns; ++k) {  // from the readers' overlay, before the applier ran
    ASSERT_EQ(Get(absl::StrCat(k)), Large(k, k % 2 == 0 ? 2 : 0)) << k;
  }
  ASSERT_OK(store_->WaitApplied());
  EXPECT_EQ(store_->stats().image_bytes, 0u);
  EXPECT_LE(store_->stats().image_bytes_peak, kBudget);
  EXPECT_GT(store_->stats().image_bytes_peak, kBudget / 2);
  Open();
  for (int k = 0; k < kTxns; ++k) ASSERT_EQ(Get(absl::StrCat(k)), Large(k, k % 2 == 0 ? 2 : 0));
}

// Recovery keeps large images of transactions without an outcome in the
// audit too, and reads them back to redo a commit or back a change out.
TEST_F(StoreTest, RecoveryRedoesAndBacksOutChangesWithLargeImages) {
  const std::string extra =
      "lmdb { map_bytes: 268435456 } tmf { image_memory_bytes: 1048576 apply_interval_ms: 60000 }";
  Open(extra);
  for (int k = 0; k < 20; ++k) ASSERT_OK(Put(absl::StrCat(k), Large(k, 0)));
  ASSERT_OK(store_->WaitApplied());
  CrashAfter([&] {
    Open(extra);
    std::vector<std::unique_ptr<Transaction>> open;
    for (int k = 0; k < 20; ++k) {
      open.push_back(*store_->Begin());
      ASSERT_OK(open.back()->Update("$DATA01", "F", absl::StrCat(k), Large(k, 1)));
    }
    // Committed in the audit, not yet applied (the applier waits a minute).
    for (int k = 0; k < 20; k += 2) ASSERT_OK(open[k]->Commit());
    for (auto& t : open) t.release();  // no outcome for the rest: the crash comes first
  });
  Open(extra);
  EXPECT_EQ(store_->recovery().backed_out_transactions, 10u);
  for (int k = 0; k < 20; ++k) ASSERT_EQ(Get(absl::StrCat(k)), Large(k, k % 2 == 0 ? 1 : 0)) << k;
}

TEST_F(StoreTest, FullLmdbMapIsGrownAndNothingIsLost) {
  Open("lmdb { map_bytes: 1048576 }");
  for (int i = 0; i < 40; ++i) {
    auto t = *store_->Begin();
    for (int j = 0; j < 50; ++j) {
      ASSERT_OK(t->Insert("$DATA01", "F", absl::StrCat(i, ":", j), std::string(1000, 'v')));
    }
    ASSERT_OK(t->Commit());
  }
  ASSERT_OK(store_->WaitApplied());  // 2 MB of values: the 1 MiB map must grow
  Open("lmdb { map_bytes: 1048576 }");
  EXPECT_EQ(Get("39:49"), std::string(1000, 'v'));
  events::EventFilter f;
  f.number = events::kVolumeMapGrown;
  EXPECT_FALSE(events::ReadEvents(FileSystem::Default(), (dir_ / "p" / "events").string(), f)
                   ->empty());
}

TEST_F(StoreTest, AuditHeldByThePinWarnsAt80PercentOfTheBound) {
  // About 220 KB of audit: 4 segments of 64 KiB, over 80 % of the bound and
  // under it, whenever the once-a-second check runs.
  Open("trail { audit_segment_bytes: 65536 } tmf { audit_retention_bytes: 300000 }");
  ASSERT_OK(WritePin(FileSystem::Default(), (dir_ / "p" / "audit").string(), 0));
  for (int i = 0; i < 1100; ++i) ASSERT_OK(Put(absl::StrCat(i), std::string(100, 'x')));
  events::EventFilter f;
  f.number = events::kAuditRetentionWarning;
  std::vector<proto::Event> warned;
  for (int i = 0; i < 50 && warned.empty(); ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    warned = *events::ReadEvents(FileSystem::Default(), (dir_ / "p" / "events").string(), f);
  }
  ASSERT_EQ(warned.size(), 1u);
  EXPECT_EQ(warned[0].severity(), proto::WARNING);
  EXPECT_EQ(warned[0].fields().at("pin_asn"), "0");
}

// Commits until one fails (bounded); returns that status.
absl::Status PutUntilRefused(StoreTest* t, int max) {
  for (int i = 0; i < max; ++i) {
    absl::Status s = t->Put(absl::StrCat("r", i), std::string(100, 'x'));
    if (!s.ok()) return s;
    if (i % 100 == 99) absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::OkStatus();
}

std::vector<proto::Event> EventsNumbered(const std::filesystem::path& dir, uint32_t number) {
  events::EventFilter f;
  f.number = number;
  return *events::ReadEvents(FileSystem::Default(), (dir / "p" / "events").string(), f);
}

TEST_F(StoreTest, AtTheRetentionBoundCommitsAreRefusedUntilThePinAdvances) {
  Open("trail { audit_segment_bytes: 65536 } tmf { audit_retention_bytes: 262144 }");
  std::string audit = (dir_ / "p" / "audit").string();
  ASSERT_OK(WritePin(FileSystem::Default(), audit, 0));
  absl::Status refused = PutUntilRefused(this, 20000);
  ASSERT_TRUE(absl::IsResourceExhausted(refused)) << refused;
  EXPECT_THAT(std::string(refused.message()), ::testing::HasSubstr("retention bound reached"));
  std::vector<proto::Event> e = EventsNumbered(dir_, events::kAuditRetentionBoundReached);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].severity(), proto::CRITICAL);
  // Nothing was deleted: the pinned audit is all there.
  EXPECT_EQ(trail::ListSegments(FileSystem::Default(), audit, "MAT")->front().segment, 1u);
  // The backup catches up: the pin moves past everything and commits resume.
  ASSERT_OK(WritePin(FileSystem::Default(), audit, store_->stats().durable_asn));
  absl::Status s = absl::UnavailableError("not tried");
  for (int i = 0; i < 60 && !s.ok(); ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    s = Put("after", "v");
  }
  ASSERT_OK(s);
  std::vector<proto::Event> recovered;
  for (int i = 0; i < 50 && recovered.empty(); ++i) {  // INFO events are written in groups
    absl::SleepFor(absl::Milliseconds(100));
    recovered = EventsNumbered(dir_, events::kAuditRetentionRecovered);
  }
  EXPECT_EQ(recovered.size(), 1u);
  EXPECT_EQ(Get("after"), "v");
}

TEST_F(StoreTest, AtTheRetentionBoundReleasePinDropsThePinAndKeepsCommitting) {
  Open("trail { audit_segment_bytes: 65536 } "
       "tmf { audit_retention_bytes: 262144 retention_policy: RELEASE_PIN }");
  std::string audit = (dir_ / "p" / "audit").string();
  ASSERT_OK(WritePin(FileSystem::Default(), audit, 0));
  std::vector<proto::Event> released;
  for (int i = 0; i < 100 && released.empty(); ++i) {
    for (int j = 0; j < 100; ++j) ASSERT_OK(Put(absl::StrCat(i, ":", j), std::string(100, 'x')));
    released = EventsNumbered(dir_, events::kAuditPinReleased);
  }
  ASSERT_EQ(released.size(), 1u);
  EXPECT_EQ(released[0].severity(), proto::CRITICAL);
  EXPECT_TRUE(std::filesystem::exists(dir_ / "p" / "audit" / "pin.released"));
  // The stale pin no longer holds audit: old segments go.
  ASSERT_OK(Put("more", "x"));
  auto list = [&] { return trail::ListSegments(FileSystem::Default(), audit, "MAT"); };
  for (int i = 0; i < 50 && list()->front().segment == 1; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_GT(list()->front().segment, 1u);
  EXPECT_TRUE(EventsNumbered(dir_, events::kAuditRetentionBoundReached).empty());
}

TEST_F(StoreTest, AfterAReleaseAPinHoldsAuditAgainOnceTheReleaseIsRemoved) {
  // rdfcom initialize writes the pin itself and removes pin.released.
  Open("trail { audit_segment_bytes: 65536 } "
       "tmf { audit_retention_bytes: 393216 retention_policy: RELEASE_PIN }");
  std::string audit = (dir_ / "p" / "audit").string();
  ASSERT_OK(WritePin(FileSystem::Default(), audit, 0));
  for (int i = 0; i < 100 && EventsNumbered(dir_, events::kAuditPinReleased).empty(); ++i) {
    for (int j = 0; j < 100; ++j) ASSERT_OK(Put(absl::StrCat(i, ":", j), std::string(100, 'x')));
  }
  auto list = [&] { return trail::ListSegments(FileSystem::Default(), audit, "MAT"); };
  for (int i = 0; i < 50 && list()->front().segment == 1; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_GT(list()->front().segment, 1u);
  ASSERT_OK(WritePin(FileSystem::Default(), audit, list()->front().first_asn - 1));
  std::filesystem::remove(dir_ / "p" / "audit" / "pin.released");
  // (A pass that read the release before it was removed may still trim.)
  absl::SleepFor(absl::Milliseconds(1500));
  trail::SegmentInfo first = list()->front();
  // Two more segments' worth: without the pin the oldest would go.
  for (int j = 0; j < 500; ++j) ASSERT_OK(Put(absl::StrCat("again:", j), std::string(100, 'x')));
  ASSERT_OK(store_->WaitApplied());
  absl::SleepFor(absl::Milliseconds(2500));
  EXPECT_EQ(list()->front().segment, first.segment);
  EXPECT_EQ(EventsNumbered(dir_, events::kAuditPinReleased).size(), 1u);
}


// Finding 1: an abort's compensations and ABORT are durable before the
// transaction stops holding the recovery bound; an idle primary then stores
// a recovery point past it, and a crash must not leave it without outcome.
TEST_F(StoreTest, AnAbortIsDurableBeforeItStopsHoldingTheRecoveryBound) {
  CrashAfter([&] {
    Open();
    ASSERT_OK(Put("k", "v0"));
    auto t1 = *store_->Begin();
    ASSERT_OK(t1->Update("$DATA01", "F", "k", "v1"));
    ASSERT_OK(Put("other", "x"));  // its group commit makes t1's DATA durable
    ASSERT_OK(t1->Abort());
    absl::SleepFor(absl::Milliseconds(2500));  // idle: recovery points are stored
  });
  Open();
  EXPECT_THAT(WithoutOutcome(), ::testing::IsEmpty());
  EXPECT_EQ(Get("k"), "v0");
}

// Finding 10: one failed fdatasync of the audit trail does not make tmf
// refuse every write until it restarts.
TEST_F(StoreTest, AFailedAuditSyncClearsOnceTheDiskRecovers) {
  FaultInjectingFileSystem& faulty = UseFaultyAuditFileSystem();
  Open();
  ASSERT_OK(Put("before", "v"));
  faulty.SetSyncError(absl::InternalError("EIO (injected)"));
  EXPECT_FALSE(Put("during", "v").ok());
  // The status file the monitor gathers says so, with the reason.
  const std::string data_dir = (dir_ / "p").string();
  absl::StatusOr<proto::ProcessStatus> st;
  for (int i = 0; i < 50; ++i) {
    st = ReadStatus(data_dir, "tmf");
    if (st.ok() && st->state() == "AUDIT_SYNC_FAILING") break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_OK(st.status());
  EXPECT_EQ(st->state(), "AUDIT_SYNC_FAILING");
  EXPECT_THAT(st->last_error(), HasSubstr("EIO"));
  faulty.SetSyncError(absl::OkStatus());
  ASSERT_OK(PutOnceTheAuditRecovers("after", "v"));
  EXPECT_EQ(Get("after"), "v");
  for (int i = 0; i < 50; ++i) {
    st = ReadStatus(data_dir, "tmf");
    if (st.ok() && st->state() == "RUNNING") break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(st->state(), "RUNNING");
  Open();
  EXPECT_EQ(Get("after"), "v");
  EXPECT_THAT(WithoutOutcome(), ::testing::IsEmpty());
}

// Finding 10: an abort that cannot be written keeps its locks until it is,
// so no other transaction changes a key a later recovery would back out.
TEST_F(StoreTest, AnAbortThatCannotBeWrittenKeepsItsLocksUntilItIs) {
  FaultInjectingFileSystem& faulty = UseFaultyAuditFileSystem();
  Open("tmf { lock_timeout_ms: 300 }");
  ASSERT_OK(Put("k", "v0"));
  auto t1 = *store_->Begin();
  ASSERT_OK(t1->Update("$DATA01", "F", "k", "v1"));
  faulty.SetSyncError(absl::InternalError("EIO (injected)"));
  EXPECT_FALSE(Put("x", "v").ok());  // the audit trail is now failing
  EXPECT_FALSE(t1->Abort().ok());
  auto t2 = *store_->Begin();
  EXPECT_THAT(t2->Update("$DATA01", "F", "k", "v2"), StatusIs(absl::StatusCode::kAborted, ::testing::_));
  ASSERT_OK(t2->Abort());
  faulty.SetSyncError(absl::OkStatus());
  ASSERT_OK(PutOnceTheAuditRecovers("k", "v3"));
  Open();
  EXPECT_EQ(Get("k"), "v3");
  EXPECT_THAT(WithoutOutcome(), ::testing::IsEmpty());
}

// Finding 4(a): a file an open transaction has written cannot be purged
// (NonStop's error 12), so its commit never finds its file gone.
TEST_F(StoreTest, PurgeOfAFileAnOpenTransactionWroteIsRefusedWithError12) {
  Open();
  auto t = *store_->Begin();
  ASSERT_OK(t->Insert("$DATA01", "F", "k", "v"));
  EXPECT_THAT(store_->PurgeFile("$DATA01", "F"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("error 12")));
  ASSERT_OK(t->Commit());
  ASSERT_OK(store_->WaitApplied());
  EXPECT_EQ(Get("k"), "v");
  ASSERT_OK(store_->PurgeFile("$DATA01", "F"));
  EXPECT_FALSE(store_->FileExists("$DATA01", "F"));
  auto aborted = *store_->Begin();
  ASSERT_OK(store_->CreateFile("$DATA01", "F"));
  ASSERT_OK(aborted->Insert("$DATA01", "F", "a", "v"));
  ASSERT_OK(aborted->Abort());  // an abort ends the claim too
  ASSERT_OK(store_->PurgeFile("$DATA01", "F"));
  Open();  // recovery replays nothing that fails
  EXPECT_FALSE(store_->FileExists("$DATA01", "G"));
}

// Finding 4(b): recovery scans from the lowest recovery ASN of all volumes
// (a long transaction keeps it low) and must not replay a PURGE and CREATE
// the volume already holds, which would drop later commits.
TEST_F(StoreTest, RecoveryNeverReplaysADdlTheVolumeAlreadyHas) {
  CrashAfter([&] {
    Open();
    auto long_running = *store_->Begin();
    ASSERT_OK(long_running->Insert("$DATA02", "F", "long", "x"));
    ASSERT_OK(store_->PurgeFile("$DATA01", "F"));
    ASSERT_OK(store_->CreateFile("$DATA01", "F"));
    ASSERT_OK(Put("k", "v"));
    ASSERT_OK(store_->WaitApplied());
    absl::SleepFor(absl::Milliseconds(1500));
    long_running.release();  // open at the crash
  });
  Open();
  EXPECT_EQ(Get("k"), "v");
  EXPECT_EQ(Get("long", "$DATA02"), "MISSING");
}

// Finding 6: in place, an LMDB commit's meta page is durable only after the
// next commit (MDB_NOMETASYNC), so audit retention may trust only the
// recovery ASN of the commit before the newest.
TEST_F(StoreTest, InPlaceRetentionKeepsTheAuditOfTheDurableRecoveryPoint) {
  Open("trail { audit_segment_bytes: 65536 } "
       "tmf { checkpoint_mode: IN_PLACE apply_interval_ms: 60000 }");
  std::string audit = (dir_ / "p" / "audit").string();
  auto list = [&] { return *trail::ListSegments(FileSystem::Default(), audit, "MAT"); };
  auto long_running = *store_->Begin();
  ASSERT_OK(long_running->Insert("$DATA02", "F", "long", "x"));
  for (int i = 0; i < 3000; ++i) ASSERT_OK(Put(absl::StrCat(i), std::string(100, 'x')));
  ASSERT_OK(long_running->Commit());
  absl::SleepFor(absl::Milliseconds(1100));  // housekeeping runs after the next apply
  // The apply stores recovery points holding the long transaction; the
  // housekeeping after it stores newer ones past it (not yet durable) and
  // must not drop the audit the durable ones need.
  ASSERT_OK(store_->WaitApplied());
  absl::SleepFor(absl::Milliseconds(500));
  ASSERT_GT(list().size(), 4u);
  EXPECT_EQ(list().front().segment, 1u);
  // Once a later commit made the newer recovery point durable, it goes.
  for (int i = 0; i < 30 && list().front().segment == 1u; ++i) {
    ASSERT_OK(Put("later", "x"));
    ASSERT_OK(store_->WaitApplied());
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_GT(list().front().segment, 1u);
}

// Finding 6: recovery that needs audit which is gone fails, naming it,
// instead of silently starting at the oldest segment.
TEST_F(StoreTest, RecoveryFailsWhenTheAuditItNeedsIsGone) {
  Open("trail { audit_segment_bytes: 65536 }");
  auto long_running = *store_->Begin();
  ASSERT_OK(long_running->Insert("$DATA02", "F", "long", "x"));
  for (int i = 0; i < 2000; ++i) ASSERT_OK(Put(absl::StrCat(i), std::string(100, 'x')));
  long_running.release();
  store_.reset();
  std::filesystem::path audit = dir_ / "p" / "audit";
  auto segs = *trail::ListSegments(FileSystem::Default(), audit.string(), "MAT");
  ASSERT_GT(segs.size(), 2u);
  std::filesystem::remove(segs.front().path);
  EXPECT_THAT(TryOpen("trail { audit_segment_bytes: 65536 }"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("restore the missing audit")));
}

// Finding 11: audit tmf keeps for its own recovery (a long transaction) is
// not audit held for the backup: with the backup caught up, commits go on.
TEST_F(StoreTest, AuditKeptForALongTransactionDoesNotReachTheRetentionBound) {
  Open("trail { audit_segment_bytes: 65536 } tmf { audit_retention_bytes: 262144 }");
  std::string audit = (dir_ / "p" / "audit").string();
  auto long_running = *store_->Begin();
  ASSERT_OK(long_running->Insert("$DATA02", "F", "long", "x"));
  for (int i = 0; i < 100; ++i) {
    for (int j = 0; j < 100; ++j) {
      ASSERT_OK(Put(absl::StrCat(i, ":", j), std::string(100, 'x')));
    }
    ASSERT_OK(WritePin(FileSystem::Default(), audit, store_->stats().durable_asn));
  }
  EXPECT_GT(trail::ListSegments(FileSystem::Default(), audit, "MAT")->size(), 8u);
  EXPECT_TRUE(EventsNumbered(dir_, events::kAuditRetentionBoundReached).empty());
  ASSERT_OK(long_running->Commit());
}

}  // namespace
}  // namespace rdf::tmf
