#include "common/events/log.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/events/catalog.h"
#include "common/testing/mem_file_system.h"
#include "common/testing/status_matchers.h"
#include "common/trail/format.h"
#include "common/trail/reader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdf::events {
namespace {

using ::rdf::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

constexpr char kDir[] = "/data/events";
constexpr int64_t kSecond = 1'000'000;
// 2026-11-25T10:45:48Z
constexpr int64_t kStart = 1'795'603'548'000'000;

class EventLogTest : public ::testing::Test {
 protected:
  EventLogTest() : clock_(kStart) {}

  EventLogOptions Options(std::string process) {
    EventLogOptions o;
    o.dir = kDir;
    o.node = "primary";
    o.process = std::move(process);
    o.fs = &fs_;
    o.clock = &clock_;
    o.echo_stderr = false;
    o.sync_interval = absl::Seconds(60);  // tests sync explicitly
    return o;
  }

  std::unique_ptr<EventLog> Open(std::string process = "extractor") {
    return OpenWith(Options(std::move(process)));
  }
  std::unique_ptr<EventLog> OpenWith(const EventLogOptions& o) {
    auto log = EventLog::Open(o);
    EXPECT_OK(log.status());
    return log.ok() ? *std::move(log) : nullptr;
  }

  std::vector<proto::Event> Read(const EventFilter& filter = {}) {
    auto events = ReadEvents(&fs_, kDir, filter);
    EXPECT_OK(events.status());
    return events.ok() ? *events : std::vector<proto::Event>{};
  }

  // "process:number" of each event, in order.
  std::vector<std::string> Summary(const EventFilter& filter = {}) {
    std::vector<std::string> out;
    for (const proto::Event& e : Read(filter)) {
      out.push_back(absl::StrCat(e.process(), ":", e.number()));
    }
    return out;
  }

  std::vector<std::string> SegmentFiles(const std::string& trail) {
    std::vector<std::string> out;
    auto files = fs_.ListDir(kDir);
    EXPECT_OK(files.status());
    if (!files.ok()) return out;
    for (const std::string& f : *files) {
      uint64_t segment;
      if (trail::ParseSegmentFileName(f, trail, &segment)) out.push_back(f);
    }
    return out;
  }

  void Advance(int64_t us) { clock_.Advance(us); }

  MemFileSystem fs_;
  FakeClock clock_;
};

TEST_F(EventLogTest, LoggedEventReadsBackWithAllItsParts) {
  auto log = Open();
  log->Log(kSynchEstablished, proto::INFO, "synch established",
           {{"asn", "123"}, {"segment", "1"}});
  ASSERT_OK(log->Flush());

  std::vector<proto::Event> events = Read();
  ASSERT_THAT(events, SizeIs(1));
  const proto::Event& e = events[0];
  EXPECT_EQ(e.version(), kEventVersion);
  EXPECT_EQ(e.time_us(), kStart);
  EXPECT_EQ(e.node(), "primary");
  EXPECT_EQ(e.process(), "extractor");
  EXPECT_EQ(e.number(), 738u);
  EXPECT_EQ(e.severity(), proto::INFO);
  EXPECT_EQ(e.text(), "synch established");
  EXPECT_EQ(e.fields().at("asn"), "123");
  EXPECT_EQ(e.fields().at("segment"), "1");
  EXPECT_EQ(e.suppressed(), 0u);
}

TEST_F(EventLogTest, CatalogFormUsesDefaultSeverityAndName) {
  auto log = Open();
  log->Log(kAuditFileMissing, {{"path", "/x"}});
  log->Log(12345);
  ASSERT_OK(log->Flush());
  std::vector<proto::Event> events = Read();
  ASSERT_THAT(events, SizeIs(2));
  EXPECT_EQ(events[0].severity(), proto::CRITICAL);
  EXPECT_EQ(events[0].text(), "audit trail file is missing");
  EXPECT_EQ(events[1].severity(), proto::ERROR);
  EXPECT_EQ(events[1].text(), "uncatalogued event");
}

TEST_F(EventLogTest, FilterBySince) {
  auto log = Open();
  log->Log(kEstablishingSynch);
  Advance(10 * kSecond);
  log->Log(kSynchEstablished);
  ASSERT_OK(log->Flush());
  EXPECT_THAT(Summary({.since_us = kStart + 10 * kSecond}),
              ElementsAre("extractor:738"));
  EXPECT_THAT(Summary({.since_us = kStart}), SizeIs(2));
}

TEST_F(EventLogTest, FilterByMinSeverity) {
  auto log = Open();
  log->Log(kSynchEstablished);   // INFO
  log->Log(kConnectFailed);      // WARNING
  log->Log(kAuthenticationFailed);  // ERROR
  log->Log(kAuditFileMissing);   // CRITICAL
  ASSERT_OK(log->Flush());
  EXPECT_THAT(Summary({.min_severity = proto::ERROR}),
              ElementsAre("extractor:942", "extractor:839"));
  EXPECT_THAT(Summary({.min_severity = proto::WARNING}), SizeIs(3));
}

TEST_F(EventLogTest, FilterByNumberAndProcess) {
  auto extractor = Open("extractor");
  auto monitor = Open("monitor");
  extractor->Log(kSynchEstablished);
  monitor->Log(kProcessStarted);
  extractor->Log(kEstablishingSynch);
  ASSERT_OK(extractor->Flush());
  ASSERT_OK(monitor->Flush());
  EXPECT_THAT(Summary({.number = 920}), ElementsAre("monitor:920"));
  EXPECT_THAT(Summary({.process = "extractor"}),
              ElementsAre("extractor:738", "extractor:737"));
  EXPECT_THAT(Summary({.number = 920, .process = "extractor"}), IsEmpty());
}

TEST_F(EventLogTest, TwoProcessesMergeByTimeTiesInTrailOrder) {
  auto receiver = Open("receiver");
  auto extractor = Open("extractor");
  receiver->Log(kSenderConnected);       // t0
  Advance(kSecond);
  extractor->Log(kEstablishingSynch);    // t1
  Advance(kSecond);
  receiver->Log(kResynchronizing);       // t2
  extractor->Log(kSynchEstablished);     // t2 too: ties keep trail order
  Advance(kSecond);
  extractor->Log(kConnectionLost);       // t3
  ASSERT_OK(receiver->Flush());
  ASSERT_OK(extractor->Flush());
  EXPECT_THAT(Summary(),
              ElementsAre("receiver:957", "extractor:737", "extractor:738",
                          "receiver:741", "extractor:941"));
}

TEST_F(EventLogTest, RepeatsOverBurstAreDroppedAndCountedOnTheNextOne) {
  auto log = Open();  // burst 5 per 10 s
  for (int i = 0; i < 8; ++i) log->Log(kConnectFailed);
  log->Log(kConnectFailed, proto::WARNING, "another text");
  Advance(10 * kSecond);
  log->Log(kConnectFailed);
  ASSERT_OK(log->Flush());

  std::vector<proto::Event> events = Read({.number = kConnectFailed});
  ASSERT_THAT(events, SizeIs(7));
  EXPECT_EQ(events[4].suppressed(), 0u);
  EXPECT_EQ(events[5].text(), "another text");
  EXPECT_EQ(events[6].suppressed(), 3u);
  EXPECT_EQ(log->count(proto::WARNING), 10u);
  EXPECT_EQ(log->suppressed(), 3u);
}

TEST_F(EventLogTest, ErrorsAreNeverDroppedEntirely) {
  EventLogOptions o = Options("updater-DATA01");
  o.repeat_burst = 0;
  auto log = OpenWith(o);
  log->Log(kUpdatingStarted);  // INFO: muted by burst 0
  log->Log(kStorageError);
  log->Log(kStorageError);
  Advance(10 * kSecond);
  log->Log(kStorageError);
  ASSERT_OK(log->Flush());
  std::vector<proto::Event> events = Read();
  ASSERT_THAT(events, SizeIs(2));
  EXPECT_EQ(events[0].number(), kStorageError);
  EXPECT_EQ(events[1].suppressed(), 1u);
}

TEST_F(EventLogTest, RepeatsPendingAtCloseAreReported) {
  auto log = Open();
  for (int i = 0; i < 7; ++i) log->Log(kConnectFailed);
  log.reset();
  std::vector<proto::Event> events = Read({.number = kRepeatsSuppressed});
  ASSERT_THAT(events, SizeIs(1));
  EXPECT_EQ(events[0].suppressed(), 2u);
  EXPECT_EQ(events[0].fields().at("number"), "940");
  EXPECT_EQ(events[0].fields().at("text"), "cannot connect to receiver");
}

TEST_F(EventLogTest, RotationKeepsTheNewestSegments) {
  EventLogOptions o = Options("purger");
  o.segment_bytes = 4096;
  o.segments_kept = 3;
  o.repeat_burst = 1'000'000;
  auto log = OpenWith(o);
  const std::string pad(200, 'x');
  for (int i = 0; i < 200; ++i) {
    log->Log(kSegmentPurged, {{"i", absl::StrCat(i)}, {"pad", pad}});
    if (i % 10 == 9) {
      ASSERT_OK(log->Flush());
    }
  }
  ASSERT_OK(log->Flush());
  EXPECT_THAT(SegmentFiles("purger"), SizeIs(3));
  std::vector<proto::Event> events = Read();
  ASSERT_THAT(events, Not(IsEmpty()));
  EXPECT_LT(events.size(), 200u);
  EXPECT_EQ(events.back().fields().at("i"), "199");
  // What is kept is a contiguous tail.
  int first = std::stoi(events.front().fields().at("i"));
  EXPECT_EQ(static_cast<int>(events.size()), 200 - first);
}

TEST_F(EventLogTest, ErrorIsDurableWhenLogReturns) {
  auto log = Open("updater-DATA01");
  log->Log(kStorageError, {{"error", "MDB_MAP_FULL"}});
  fs_.DropUnsyncedData();  // power loss, the log still open
  EXPECT_THAT(Summary(), ElementsAre("updater-DATA01:739"));
}

TEST_F(EventLogTest, InfoIsDurableAfterFlush) {
  auto log = Open();
  log->Log(kSynchEstablished);
  ASSERT_OK(log->Flush());
  fs_.DropUnsyncedData();
  EXPECT_THAT(Summary(), ElementsAre("extractor:738"));
}

TEST_F(EventLogTest, BackgroundThreadSyncsWithinTheInterval) {
  EventLogOptions o = Options("extractor");
  o.sync_interval = absl::Milliseconds(10);
  auto log = OpenWith(o);
  log->Log(kSynchEstablished);
  absl::SleepFor(absl::Milliseconds(500));
  fs_.DropUnsyncedData();
  EXPECT_THAT(Summary(), ElementsAre("extractor:738"));
}

TEST_F(EventLogTest, ConcurrentLoggersLoseNothing) {
  EventLogOptions o = Options("monitor");
  o.repeat_burst = 1'000'000;
  auto log = OpenWith(o);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&log, t] {
      for (int i = 0; i < 200; ++i) {
        log->Log(kStateChanged, {{"t", absl::StrCat(t)}, {"i", absl::StrCat(i)}});
        if (i % 50 == 0) log->Log(kProcessDied, {{"t", absl::StrCat(t)}});
      }
    });
  }
  for (std::thread& th : threads) th.join();
  log.reset();
  std::vector<proto::Event> events = Read({.number = kStateChanged});
  ASSERT_THAT(events, SizeIs(800));
  std::map<std::string, int> next;  // per thread, events are in order
  for (const proto::Event& e : events) {
    EXPECT_EQ(std::stoi(e.fields().at("i")), next[e.fields().at("t")]++);
  }
  EXPECT_THAT(Read({.number = kProcessDied}), SizeIs(16));
}

TEST_F(EventLogTest, RealFileSystemRoundTrip) {
  std::string dir = JoinPath(::testing::TempDir(),
                             absl::StrCat("event_log_test_", getpid()));
  EventLogOptions o = Options("receiver");
  o.fs = FileSystem::Default();
  o.dir = dir;
  {
    auto log = OpenWith(o);
    log->Log(kSenderConnected, {{"peer", "tcp://127.0.0.1:7001"}});
    log->Log(kDiskFullStopped);
  }
  {
    auto log = OpenWith(o);  // reopen: ASNs continue, nothing lost
    log->Log(kDiskFullResumed);
  }
  auto events = ReadEvents(FileSystem::Default(), dir, {});
  ASSERT_OK(events.status());
  std::vector<uint32_t> numbers;
  for (const proto::Event& e : *events) numbers.push_back(e.number());
  EXPECT_THAT(numbers, ElementsAre(957, 954, 955));
  std::filesystem::remove_all(dir);
}

TEST_F(EventLogTest, AsnsContinueAfterReopen) {
  {
    auto log = Open();
    log->Log(kEstablishingSynch);
    log->Log(kSynchEstablished);
  }
  {
    auto log = Open();
    log->Log(kConnectionLost);
  }
  trail::ReaderOptions r{.dir = kDir, .name = "extractor", .fs = &fs_};
  ASSERT_OK_AND_ASSIGN(auto reader, trail::TrailReader::Open(r));
  std::vector<uint64_t> asns;
  for (;;) {
    ASSERT_OK_AND_ASSIGN(auto rec, reader->Next());
    if (!rec) break;
    EXPECT_EQ(rec->type, kEventRecordType);
    asns.push_back(rec->asn);
  }
  EXPECT_THAT(asns, ElementsAre(1, 2, 3));
  EXPECT_THAT(Summary(),
              ElementsAre("extractor:737", "extractor:738", "extractor:941"));
}

TEST_F(EventLogTest, DamagedTrailEndsWithADamageEvent) {
  {
    auto log = Open();
    log->Log(kEstablishingSynch);
    log->Log(kSynchEstablished);
    log->Log(kConnectionLost);
  }
  // Corrupt the payload of the second record.
  trail::ReaderOptions r{.dir = kDir, .name = "extractor", .fs = &fs_};
  ASSERT_OK_AND_ASSIGN(auto reader, trail::TrailReader::Open(r));
  ASSERT_OK_AND_ASSIGN(auto first, reader->Next());
  ASSERT_OK_AND_ASSIGN(auto second, reader->Next());
  ASSERT_TRUE(first && second);
  std::string path = JoinPath(kDir, trail::SegmentFileName("extractor", 1));
  ASSERT_OK_AND_ASSIGN(std::string bytes, fs_.Contents(path));
  bytes[second->pos.offset + trail::kFrameHeaderSize + 2] ^= 0x55;
  ASSERT_OK(fs_.SetContents(path, bytes));

  std::vector<proto::Event> events = Read();
  ASSERT_THAT(events, SizeIs(2));
  EXPECT_EQ(events[0].number(), kEstablishingSynch);
  EXPECT_EQ(events[1].number(), kTrailDamaged);
  EXPECT_EQ(events[1].severity(), proto::ERROR);
  EXPECT_EQ(events[1].process(), "extractor");
  EXPECT_EQ(events[1].fields().at("after_asn"), "1");
}

TEST_F(EventLogTest, WriteErrorNeverFailsTheCaller) {
  FaultInjectingFileSystem faulty(&fs_);
  EventLogOptions o = Options("receiver");
  o.fs = &faulty;
  auto log = OpenWith(o);
  faulty.SetSyncError(absl::ResourceExhaustedError("ENOSPC"));
  log->Log(kDiskFullStopped);  // CRITICAL: sync fails, Log still returns
  EXPECT_GE(log->write_errors(), 1u);
  faulty.SetSyncError(absl::OkStatus());
  ASSERT_OK(log->Flush());
  fs_.DropUnsyncedData();
  EXPECT_THAT(Summary(), ElementsAre("receiver:954"));
}

TEST_F(EventLogTest, MissingDirectoryHasNoEvents) {
  EXPECT_THAT(Read(), IsEmpty());
}

TEST_F(EventLogTest, OpenRefusesABadProcessName) {
  EXPECT_THAT(EventLog::Open(Options("")).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("process")));
  EXPECT_THAT(EventLog::Open(Options("a/b")).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("process")));
}

TEST_F(EventLogTest, InvalidUtf8IsReplaced) {
  auto log = Open();
  log->Log(kFileSystemError, proto::ERROR, "bad \xff byte", {{"key", "\xc3"}});
  std::vector<proto::Event> events = Read();
  ASSERT_THAT(events, SizeIs(1));
  EXPECT_EQ(events[0].text(), "bad \xEF\xBF\xBD byte");
  EXPECT_EQ(events[0].fields().at("key"), "\xEF\xBF\xBD");
}

TEST_F(EventLogTest, EchoesOneLineToStderr) {
  EventLogOptions o = Options("extractor");
  o.echo_stderr = true;
  auto log = OpenWith(o);
  ::testing::internal::CaptureStderr();
  log->Log(kSynchEstablished, {{"asn", "123"}});
  EXPECT_EQ(::testing::internal::GetCapturedStderr(),
            "2026-11-25T10:45:48.000000Z primary extractor 738 INFO "
            "synch established asn=123\n");
}

// --- Formats -----------------------------------------------------------------

proto::Event SampleEvent() {
  proto::Event e;
  e.set_version(1);
  e.set_time_us(kStart + 123456);
  e.set_node("backup");
  e.set_process("updater-DATA01");
  e.set_number(961);
  e.set_severity(proto::WARNING);
  e.set_text("duplicate key skipped (error 10)");
  (*e.mutable_fields())["txid"] = "77";
  (*e.mutable_fields())["file"] = "LOAD";
  (*e.mutable_fields())["key"] = "a \"b\"\n";
  e.set_suppressed(2);
  return e;
}

TEST(EventFormatTest, LineSortsFieldsAndQuotesOddValues) {
  EXPECT_EQ(FormatEventLine(SampleEvent()),
            "2026-11-25T10:45:48.123456Z backup updater-DATA01 961 WARNING "
            "duplicate key skipped (error 10) file=LOAD key=\"a \\\"b\\\"\\n\" "
            "txid=77 suppressed=2");
}

TEST(EventFormatTest, JsonHasNumbersAsNumbersAndFieldsAsObject) {
  EXPECT_EQ(EventToJson(SampleEvent()),
            "{\"time\":\"2026-11-25T10:45:48.123456Z\","
            "\"time_us\":1795603548123456,\"node\":\"backup\","
            "\"process\":\"updater-DATA01\",\"number\":961,"
            "\"severity\":\"WARNING\","
            "\"text\":\"duplicate key skipped (error 10)\","
            "\"fields\":{\"file\":\"LOAD\",\"key\":\"a \\\"b\\\"\\n\","
            "\"txid\":\"77\"},\"suppressed\":2,\"version\":1}");
}

TEST(EventFormatTest, JsonEscapesControlCharacters) {
  proto::Event e;
  e.set_text(std::string("a\x01z\\", 4));
  EXPECT_THAT(EventToJson(e), HasSubstr("\"text\":\"a\\u0001z\\\\\""));
}

TEST(ParseSinceTest, Rfc3339Times) {
  const int64_t now = kStart;
  EXPECT_EQ(*ParseSince("2026-11-25T10:45:48Z", now), kStart);
  EXPECT_EQ(*ParseSince("2026-11-25T10:45:48.5Z", now), kStart + 500'000);
  EXPECT_EQ(*ParseSince("2026-11-25T11:45:48+01:00", now), kStart);
  EXPECT_EQ(*ParseSince(" 2026-11-25T10:45:48Z ", now), kStart);
}

TEST(ParseSinceTest, DurationsBackFromNow) {
  const int64_t now = kStart;
  EXPECT_EQ(*ParseSince("30s", now), now - 30 * kSecond);
  EXPECT_EQ(*ParseSince("10m", now), now - 600 * kSecond);
  EXPECT_EQ(*ParseSince("2h", now), now - 7200 * kSecond);
  EXPECT_EQ(*ParseSince("1d", now), now - 86400 * kSecond);
  EXPECT_EQ(*ParseSince("1h30m", now), now - 5400 * kSecond);
  EXPECT_EQ(*ParseSince("1d2h", now), now - 93600 * kSecond);
  EXPECT_EQ(*ParseSince("0", now), now);
}

TEST(ParseSinceTest, RejectsOtherText) {
  for (const char* bad : {"", "10", "yesterday", "-5m", "d", "xd", "1d10",
                          "2026-11-25 10:00", "inf"}) {
    EXPECT_THAT(ParseSince(bad, kStart),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("RFC 3339")))
        << bad;
  }
}

TEST(ParseSeverityTest, NamesAnyCase) {
  EXPECT_EQ(*ParseSeverity("warning"), proto::WARNING);
  EXPECT_EQ(*ParseSeverity("CRITICAL"), proto::CRITICAL);
  EXPECT_THAT(ParseSeverity("SEVERITY_UNSPECIFIED").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("INFO")));
  EXPECT_THAT(ParseSeverity("loud").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("INFO")));
}

// --- The catalog and its documentation ----------------------------------------

std::string ReadSource(const std::string& relative) {
  std::ifstream in(std::string(RDF_SOURCE_DIR) + "/" + relative);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(EventCatalogTest, FindsEveryEventAndNothingElse) {
  ASSERT_NE(FindEvent(kSynchEstablished), nullptr);
  EXPECT_EQ(FindEvent(kSynchEstablished)->severity, proto::INFO);
  EXPECT_STREQ(FindEvent(kSynchEstablished)->name, "synch established");
  EXPECT_EQ(FindEvent(kTakeoverFailed)->severity, proto::CRITICAL);
  EXPECT_EQ(FindEvent(0), nullptr);
  EXPECT_EQ(FindEvent(701), nullptr);
  EXPECT_EQ(FindEvent(100000), nullptr);
  for (const EventInfo& e : AllEvents()) {
    EXPECT_EQ(FindEvent(e.number), &e);
    EXPECT_GE(e.severity, proto::INFO);
  }
}

// Every `inline constexpr uint32_t kName = N;` in event_catalog.h is in the
// table, so a constant cannot be added without a severity and a name.
TEST(EventCatalogTest, EveryConstantIsInTheTable) {
  std::string header = ReadSource("common/events/catalog.h");
  ASSERT_FALSE(header.empty()) << "cannot read common/events/catalog.h";
  std::regex constant(R"(inline constexpr uint32_t (k\w+) = (\d+);)");
  int found = 0;
  for (auto it = std::sregex_iterator(header.begin(), header.end(), constant);
       it != std::sregex_iterator(); ++it, ++found) {
    EXPECT_NE(FindEvent(std::stoul((*it)[2])), nullptr) << (*it)[1];
  }
  EXPECT_EQ(found, static_cast<int>(AllEvents().size()));
}

// docs/events.md has a heading "### <number> <name> (<SEVERITY>)" for every
// catalogued event, and no heading for an event the catalog lacks.
TEST(EventCatalogTest, EveryEventIsDocumented) {
  std::string doc = ReadSource("docs/events.md");
  ASSERT_FALSE(doc.empty()) << "cannot read docs/events.md";
  std::map<uint32_t, std::string> headings;
  std::regex heading(R"(^### (\d+) (.*)$)");
  for (absl::string_view line : absl::StrSplit(doc, '\n')) {
    std::smatch m;
    std::string l(line);
    if (std::regex_match(l, m, heading)) {
      uint32_t n = std::stoul(m[1]);
      EXPECT_EQ(headings.count(n), 0u) << "documented twice: " << n;
      headings[n] = m[2];
    }
  }
  for (const EventInfo& e : AllEvents()) {
    auto it = headings.find(e.number);
    if (it == headings.end()) {
      ADD_FAILURE() << "event " << e.number << " not in docs/events.md";
      continue;
    }
    std::string want = absl::StrCat(
        e.name, " (", proto::Severity_Name(e.severity), ")");
    EXPECT_EQ(it->second, want) << "heading of event " << e.number;
  }
  for (const auto& [n, text] : headings) {
    EXPECT_NE(FindEvent(n), nullptr) << "docs/events.md documents " << n
                                     << " but the catalog lacks it";
  }
}

}  // namespace
}  // namespace rdf::events

namespace rdf::events {
namespace {

class EventCursorTest : public EventLogTest {};

TEST_F(EventCursorTest, ReadNewEventsReturnsEachEventOnceAcrossTrailsAndRotation) {
  EventLogOptions o = Options("receiver");
  o.segment_bytes = 4096;
  o.segments_kept = 3;
  o.repeat_burst = 100000;  // no rate limiting here
  auto rcv = OpenWith(o);
  auto ext = Open("extractor");
  EventCursor cursor;
  auto next = [&] {
    auto e = ReadNewEvents(&fs_, kDir, {}, &cursor);
    EXPECT_OK(e.status());
    return e.ok() ? *e : std::vector<proto::Event>{};
  };
  EXPECT_TRUE(next().empty());
  rcv->Log(kSynchEstablished, {{"i", "0"}});
  ext->Log(kSynchEstablished, {{"i", "1"}});
  ASSERT_OK(rcv->Flush());
  ASSERT_OK(ext->Flush());
  EXPECT_EQ(next().size(), 2u);
  EXPECT_TRUE(next().empty());  // nothing new
  // Many more than three 4 KiB segments hold: the cursor's segment rotates
  // away between reads, and every event still comes exactly once.
  int seen = 0;
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 20; ++i) {
      rcv->Log(kSynchEstablished, proto::INFO, "synch established",
               {{"round", absl::StrCat(round)}, {"i", absl::StrCat(i)}});
    }
    ASSERT_OK(rcv->Flush());
    std::vector<proto::Event> fresh = next();
    seen += static_cast<int>(fresh.size());
    ASSERT_FALSE(fresh.empty());
    EXPECT_EQ(fresh.back().fields().at("round"), absl::StrCat(round));
    EXPECT_EQ(fresh.back().fields().at("i"), "19");
  }
  EXPECT_EQ(seen, 400);
  EXPECT_GT(SegmentFiles("receiver").size(), 0u);
}

}  // namespace
}  // namespace rdf::events
