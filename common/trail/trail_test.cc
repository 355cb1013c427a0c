// Trail segments end to end: format, writer (group commit, rollover, repair,
// truncation, retention), reader (forward, backward, seeking, limits), and
// the durable end. Most tests run on a MemFileSystem behind a
// FaultInjectingFileSystem, with a LocalEnd standing in for the end file.
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/testing/mem_file_system.h"
#include "common/testing/status_matchers.h"
#include "common/trail/durable_end.h"
#include "common/trail/format.h"
#include "common/trail/reader.h"
#include "common/trail/writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdf::trail {
namespace {

using ::rdf::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kDir[] = "/audit";
constexpr char kName[] = "MAT";

std::string Payload(uint64_t asn, size_t len = 60) {
  std::string s = absl::StrCat("record-", asn, ":");
  std::mt19937 rng(static_cast<uint32_t>(asn));
  while (s.size() < len) s.push_back(static_cast<char>('a' + rng() % 26));
  s.resize(len);
  return s;
}

class TrailTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(OpenWriter()); }

  absl::Status OpenWriter() {
    reader_.reset();
    writer_.reset();
    WriterOptions o;
    o.dir = kDir;
    o.name = kName;
    o.segment_bytes = segment_bytes_;
    o.fs = &fs_;
    o.clock = &clock_;
    o.publisher = end_.get();
    o.shared_end = false;
    o.cut_past_published_end = cut_past_published_end_;
    auto w = TrailWriter::Open(o);
    if (!w.ok()) return w.status();
    writer_ = std::move(*w);
    next_asn_ = writer_->last_asn() + 1;
    return absl::OkStatus();
  }

  // --- vocabulary -----------------------------------------------------------
  uint64_t Write(size_t len = 60) {
    uint64_t asn = next_asn_++;
    EXPECT_OK(writer_->Append(asn, 1, Payload(asn, len), 1000 + asn));
    return asn;
  }
  void WriteN(int n, size_t len = 60) {
    for (int i = 0; i < n; ++i) Write(len);
  }
  void Sync() { ASSERT_OK(writer_->Sync()); }
  // Records 1-2 durable; 3-5 appended, and their sync fails (EIO); the
  // file system syncs again afterwards. Returns the failed sync's status.
  absl::Status FailTheSyncOfRecords3To5() {
    WriteN(2);
    Sync();
    WriteN(3);
    fs_.SetSyncError(absl::DataLossError("injected: EIO"));
    absl::Status failed = writer_->Sync();
    fs_.SetSyncError(absl::OkStatus());
    return failed;
  }
  // Cuts the trail back to just after record `asn`.
  absl::Status TruncateAfter(uint64_t asn) {
    next_asn_ = asn + 1;
    return writer_->TruncateTo(End{asn, Find(asn).next, int64_t(1000 + asn)});
  }

  TrailReader* Reader(bool limited = true) {
    if (reader_ == nullptr) {
      ReaderOptions o{kDir, kName, &fs_, limited ? end_.get() : nullptr};
      auto r = TrailReader::Open(o);
      EXPECT_OK(r.status());
      if (r.ok()) reader_ = std::move(*r);
    }
    return reader_.get();
  }
  // "<asn>" for a record whose payload checks out, "EOF", or the error.
  static std::string Show(const absl::StatusOr<std::optional<Record>>& r) {
    if (!r.ok()) return r.status().ToString();
    if (!r->has_value()) return "EOF";
    const Record& rec = **r;
    if (rec.payload != Payload(rec.asn, rec.payload.size())) return "BAD PAYLOAD";
    return absl::StrCat(rec.asn);
  }
  std::string Read() { return Reader() ? Show(Reader()->Next()) : "NO READER"; }
  std::string ReadBack() { return Reader() ? Show(Reader()->Prev()) : "NO READER"; }
  // Every remaining record as "1 2 3 EOF" (or ending in the error).
  std::string ReadAll() {
    std::string out;
    for (;;) {
      std::string r = Read();
      absl::StrAppend(&out, out.empty() ? "" : " ", r);
      if (r == "EOF" || !absl::ascii_isdigit(r[0])) return out;
    }
  }
  std::string ReadAllBack() {
    std::string out;
    for (;;) {
      std::string r = ReadBack();
      absl::StrAppend(&out, out.empty() ? "" : " ", r);
      if (r == "EOF" || !absl::ascii_isdigit(r[0])) return out;
    }
  }
  std::string Range(uint64_t from, uint64_t to, bool eof = true) {
    std::string out;
    for (uint64_t i = from; i <= to; ++i) absl::StrAppend(&out, out.empty() ? "" : " ", i);
    if (eof) absl::StrAppend(&out, out.empty() ? "" : " ", "EOF");
    return out;
  }

  // Where record `asn` starts (a full scan with no limit).
  Record Find(uint64_t asn) {
    ReaderOptions o{kDir, kName, &fs_, nullptr};
    auto r = TrailReader::Open(o);
    EXPECT_OK(r.status());
    EXPECT_OK((*r)->SeekToAsn(asn));
    auto rec = (*r)->Next();
    EXPECT_TRUE(rec.ok() && rec->has_value() && (*rec)->asn == asn);
    return **rec;
  }
  static std::string SegPath(uint64_t segment) {
    return JoinPath(kDir, SegmentFileName(kName, segment));
  }
  std::string Contents(uint64_t segment) {
    auto c = mem_.Contents(SegPath(segment));
    return c.ok() ? *c : "";
  }
  void SetContents(uint64_t segment, std::string c) {
    ASSERT_OK(mem_.SetContents(SegPath(segment), std::move(c)));
  }
  void CorruptByte(const Position& p) {
    std::string c = Contents(p.segment);
    c[p.offset] ^= 0x20;
    SetContents(p.segment, c);
  }
  // Overwrites bytes at `p` ("what a crash left behind").
  void Scribble(const Position& p, const std::string& bytes) {
    std::string c = Contents(p.segment);
    c.replace(p.offset, bytes.size(), bytes);
    SetContents(p.segment, c);
  }
  void Truncate(uint64_t segment, uint64_t size) {
    std::string c = Contents(segment);
    c.resize(size);
    SetContents(segment, c);
  }
  // Power loss: unsynced bytes and directory entries vanish; the writer's
  // memory too. The published end (the end file) may survive.
  void DropUnsynced() {
    reader_.reset();
    writer_.reset();
    mem_.DropUnsyncedData();
    end_->SimulateReboot();
  }
  void ForgetEnd() { end_ = std::make_unique<LocalEnd>(); }
  std::string Frame(uint64_t asn, size_t len = 60) {
    std::string f;
    EncodeFrame(asn, 1, Payload(asn, len), &f);
    return f;
  }
  std::vector<uint64_t> Segments() {
    std::vector<uint64_t> out;
    auto segs = ListSegments(&fs_, kDir, kName);
    EXPECT_OK(segs.status());
    for (const auto& s : *segs) out.push_back(s.segment);
    return out;
  }

  uint64_t segment_bytes_ = 1024;  // 10 records of 84 bytes
  bool cut_past_published_end_ = true;
  MemFileSystem mem_;
  FaultInjectingFileSystem fs_{&mem_};
  FakeClock clock_;
  std::unique_ptr<LocalEnd> end_ = std::make_unique<LocalEnd>();
  std::unique_ptr<TrailWriter> writer_;
  std::unique_ptr<TrailReader> reader_;
  uint64_t next_asn_ = 1;
};

// --- Format ------------------------------------------------------------------

TEST(TrailFormat, HeaderRoundTrips) {
  SegmentHeader h{7, 1234, 5678, 99, "MAT"};
  std::string bytes = EncodeHeader(h);
  ASSERT_EQ(bytes.size(), kHeaderSize);
  ASSERT_OK_AND_ASSIGN(SegmentHeader d, DecodeHeader(bytes));
  EXPECT_EQ(d.segment, 7u);
  EXPECT_EQ(d.first_asn, 1234u);
  EXPECT_EQ(d.prev_end, 5678u);
  EXPECT_EQ(d.created_us, 99);
  EXPECT_EQ(d.name, "MAT");
}

TEST(TrailFormat, DamagedHeaderIsDataLoss) {
  std::string bytes = EncodeHeader(SegmentHeader{1, 1, 0, 0, "MAT"});
  bytes[20] ^= 1;
  EXPECT_THAT(DecodeHeader(bytes), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("checksum")));
  EXPECT_THAT(DecodeHeader(bytes.substr(0, 100)),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("short")));
}

TEST(TrailFormat, FrameLayoutIsAsDocumented) {
  std::string f;
  EncodeFrame(0x0102030405060708, 9, "abc", &f);
  ASSERT_EQ(f.size(), kFrameOverhead + 3);
  EXPECT_EQ(DecodeFixed32(f.data() + 4), 3u);
  EXPECT_EQ(DecodeFixed64(f.data() + 8), 0x0102030405060708u);
  EXPECT_EQ(f[16], 9);
  EXPECT_EQ(f.substr(20, 3), "abc");
  EXPECT_EQ(DecodeFixed32(f.data() + 23), 3u);
  EXPECT_EQ(CheckFrame(std::string_view(f).substr(0, 20), "abc", 3), nullptr);
  EXPECT_STREQ(CheckFrame(std::string_view(f).substr(0, 20), "abd", 3), "checksum mismatch");
}

TEST(TrailFormat, SegmentFileNamesParse) {
  EXPECT_EQ(SegmentFileName("MAT", 3), "MAT.0000000003");
  uint64_t n = 0;
  EXPECT_TRUE(ParseSegmentFileName("MAT.0000000042", "MAT", &n));
  EXPECT_EQ(n, 42u);
  EXPECT_FALSE(ParseSegmentFileName("MAT.end", "MAT", &n));
  EXPECT_FALSE(ParseSegmentFileName("MAT2.0000000001", "MAT", &n));
  EXPECT_EQ(ToString(Position{1, 4096}), "1:4096");
}

// --- Writing and reading -----------------------------------------------------

TEST_F(TrailTest, EmptyTrailReadsEof) { EXPECT_EQ(Read(), "EOF"); }

TEST_F(TrailTest, ReadsBackWhatWasSynced) {
  WriteN(3);
  Sync();
  EXPECT_EQ(ReadAll(), "1 2 3 EOF");
}

TEST_F(TrailTest, ReaderNeverSeesUnsyncedRecords) {
  WriteN(2);
  Sync();
  WriteN(2);
  EXPECT_EQ(ReadAll(), "1 2 EOF");
  Sync();
  EXPECT_EQ(ReadAll(), "3 4 EOF");
}

TEST_F(TrailTest, SyncPublishesTheDurableEnd) {
  WriteN(2);
  EXPECT_EQ(end_->Get().asn, 0u);
  Sync();
  EXPECT_EQ(end_->Get().asn, 2u);
  EXPECT_EQ(end_->Get().time_us, 1002);
  EXPECT_EQ(end_->Get().pos, writer_->appended_end().pos);
  EXPECT_EQ(writer_->durable_end().pos, end_->Get().pos);
}

TEST_F(TrailTest, AppendRejectsDecreasingAsnAsnZeroAndTypeZero) {
  WriteN(2);
  EXPECT_THAT(writer_->Append(1, 1, "x", 0), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ASN 1")));
  EXPECT_THAT(writer_->Append(5, 0, "x", 0), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("type 0")));
}

TEST_F(TrailTest, ControlFrameMayRepeatTheLastAsnAndReadsBothWays) {
  WriteN(2);
  ASSERT_OK(writer_->Append(2, 16, "savepoint", 0));
  ASSERT_OK(writer_->Append(3, 1, "next", 0));
  Sync();
  TrailReader* r = Reader();
  ASSERT_NE(r, nullptr);
  std::vector<uint64_t> asns;
  while (true) {
    auto rec = r->Next();
    ASSERT_OK(rec.status());
    if (!rec->has_value()) break;
    asns.push_back((*rec)->asn);
  }
  EXPECT_THAT(asns, ::testing::ElementsAre(1, 2, 2, 3));
  ASSERT_OK(r->SeekToEnd());
  std::vector<uint64_t> back;
  while (true) {
    auto rec = r->Prev();
    ASSERT_OK(rec.status());
    if (!rec->has_value()) break;
    back.push_back((*rec)->asn);
  }
  EXPECT_THAT(back, ::testing::ElementsAre(3, 2, 2, 1));
}

TEST_F(TrailTest, AsnZeroIsRejectedOnAnEmptyTrail) {
  EXPECT_THAT(writer_->Append(0, 1, "x", 0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ASN 0")));
}

// --- What Open adopts past the published end (docs/trail-format.md) -------

// fsyncgate: after a failed fdatasync the frames still read back (here: the
// unsynced bytes of the MemFileSystem), but a reopen in the same boot must
// not adopt them; a power loss would take them.
TEST_F(TrailTest, ReopenInTheSameBootCutsFramesWhoseSyncFailed) {
  EXPECT_TRUE(absl::IsDataLoss(FailTheSyncOfRecords3To5()));
  ASSERT_OK(OpenWriter());
  EXPECT_EQ(writer_->last_asn(), 2u);
  EXPECT_EQ(end_->Get().asn, 2u);
  Write();  // ASN 3 again, and this time durable
  Sync();
  DropUnsynced();
  ASSERT_OK(OpenWriter());
  EXPECT_EQ(ReadAll(), "1 2 3 EOF");
}

TEST_F(TrailTest, ReopenInTheSameBootRemovesSegmentsPastThePublishedEnd) {
  WriteN(2);
  Sync();
  WriteN(15);  // into segment 2 (10 records fill a segment)
  fs_.SetSyncError(absl::DataLossError("injected: EIO"));
  EXPECT_FALSE(writer_->Sync().ok());
  fs_.SetSyncError(absl::OkStatus());
  ASSERT_OK(OpenWriter());
  EXPECT_THAT(Segments(), ElementsAre(1));
  EXPECT_EQ(writer_->last_asn(), 2u);
  EXPECT_EQ(ReadAll(), "1 2 EOF");
}

// A trail whose readers read to its physical end (an event log) keeps what
// they may have read: adopted and synced, not cut.
TEST_F(TrailTest, TrailReadToItsPhysicalEndAdoptsInsteadOfCutting) {
  cut_past_published_end_ = false;
  EXPECT_FALSE(FailTheSyncOfRecords3To5().ok());
  ASSERT_OK(OpenWriter());
  EXPECT_EQ(writer_->last_asn(), 5u);
  DropUnsynced();
  ASSERT_OK(OpenWriter());
  EXPECT_EQ(ReadAll(), "1 2 3 4 5 EOF");
}

// After a reboot the end file may be older than what was acknowledged, so
// Open adopts what reads back; it must make it durable before publishing.
TEST_F(TrailTest, FramesAdoptedAfterARebootAreSyncedBeforeTheyArePublished) {
  EXPECT_FALSE(FailTheSyncOfRecords3To5().ok());
  writer_.reset();
  end_->SimulateReboot();
  ASSERT_OK(OpenWriter());
  EXPECT_EQ(end_->Get().asn, 5u);
  DropUnsynced();  // then the power goes: what was published stays
  ASSERT_OK(OpenWriter());
  EXPECT_EQ(ReadAll(), "1 2 3 4 5 EOF");
}

TEST_F(TrailTest, AStaleEndAfterARebootNeverCutsAcknowledgedRecords) {
  WriteN(5);
  Sync();
  end_->Publish(End{2, Find(2).next, 1002});  // the end file missed updates
  DropUnsynced();
  ASSERT_OK(OpenWriter());
  EXPECT_EQ(writer_->last_asn(), 5u);
  EXPECT_EQ(ReadAll(), "1 2 3 4 5 EOF");
}

TEST_F(TrailTest, SyncWithNothingAppendedDoesNoIo) {
  WriteN(1);
  Sync();
  uint64_t before = writer_->fsyncs();
  Sync();
  EXPECT_EQ(writer_->fsyncs(), before);
}

TEST_F(TrailTest, RolloverSpreadsRecordsOverSegments) {
  WriteN(40);
  Sync();
  EXPECT_THAT(Segments(), ElementsAre(1, 2, 3, 4));
  EXPECT_EQ(ReadAll(), Range(1, 40));
}

TEST_F(TrailTest, RolloverHeaderRecordsFirstAsnAndPreviousEnd) {
  WriteN(20);
  Sync();
  Record first_in_2 = Find(11);
  ASSERT_EQ(first_in_2.pos, (Position{2, kHeaderSize}));
  ASSERT_OK_AND_ASSIGN(SegmentHeader h, DecodeHeader(Contents(2).substr(0, kHeaderSize)));
  EXPECT_EQ(h.first_asn, 11u);
  EXPECT_EQ(h.prev_end, Find(10).next.offset);
}

TEST_F(TrailTest, FrameBiggerThanASegmentGetsItsOwn) {
  Write();
  Write(5000);
  Write();
  Sync();
  EXPECT_THAT(Segments(), ElementsAre(1, 2, 3));
  EXPECT_EQ(ReadAll(), "1 2 3 EOF");
  EXPECT_EQ(Find(2).pos, (Position{2, kHeaderSize}));
}

// tmf keeps large images out of memory and reads them back by position:
// from the buffer before the sync, from the file after it (and after a
// failed sync, whose frames go back to the buffer), across a rollover.
TEST_F(TrailTest, AppendedFramesReadBackByPositionSyncedOrNot) {
  std::vector<Position> at(6);
  auto append = [&](uint64_t asn, size_t len) {
    EXPECT_OK(writer_->Append(asn, 1, Payload(asn, len), 1000, &at[asn]));
  };
  auto read = [&](uint64_t asn, size_t len) -> std::string {
    absl::StatusOr<std::string> p = writer_->ReadPayload(at[asn]);
    if (!p.ok()) return p.status().ToString();
    return *p == Payload(asn, len) ? "ok" : "BAD PAYLOAD";
  };
  append(1, 60);
  // Written in place (as tmf serializes its records): the same frame.
  const std::string big = Payload(2, 5000);
  ASSERT_OK(writer_->AppendWith(
      2, 1, big.size(), [&](char* p) { std::memcpy(p, big.data(), big.size()); }, 1000, &at[2]));
  EXPECT_EQ(read(1, 60), "ok");
  EXPECT_EQ(read(2, 5000), "ok");
  Sync();
  EXPECT_EQ(read(1, 60), "ok");
  EXPECT_EQ(read(2, 5000), "ok");
  EXPECT_EQ(at[2], (Position{2, kHeaderSize}));
  append(3, 100);
  fs_.SetSyncError(absl::DataLossError("injected: EIO"));
  EXPECT_FALSE(writer_->Sync().ok());
  fs_.SetSyncError(absl::OkStatus());
  EXPECT_EQ(read(3, 100), "ok");
  ASSERT_OK(writer_->Sync());
  EXPECT_EQ(read(3, 100), "ok");
  CorruptByte({at[1].segment, at[1].offset + 30});
  EXPECT_THAT(read(1, 60), HasSubstr("read back bad: checksum mismatch"));
  CorruptByte({at[3].segment, at[3].offset + 7});  // the length becomes huge
  EXPECT_THAT(read(3, 100), HasSubstr("read back bad"));
}

TEST_F(TrailTest, FrameBiggerThanTheReadBufferReadsBothWays) {
  segment_bytes_ = 4 << 20;
  ASSERT_OK(OpenWriter());
  Write();
  Write(700 << 10);
  Write();
  Sync();
  EXPECT_EQ(ReadAll(), "1 2 3 EOF");
  EXPECT_EQ(ReadAllBack(), "3 2 1 EOF");
}

TEST_F(TrailTest, ReopenedWriterAppendsAfterTheEnd) {
  WriteN(15);
  Sync();
  ASSERT_OK(OpenWriter());
  EXPECT_EQ(writer_->last_asn(), 15u);
  WriteN(2);
  Sync();
  EXPECT_EQ(ReadAll(), Range(1, 17));
}

// --- Resuming and seeking ----------------------------------------------------

TEST_F(TrailTest, ResumeByPosition) {
  WriteN(30);
  Sync();
  Record r = Find(17);
  ASSERT_OK(Reader()->SeekToPosition(r.next));
  EXPECT_EQ(ReadAll(), Range(18, 30));
}

TEST_F(TrailTest, ResumeByAsnAcrossSegments) {
  WriteN(40);
  Sync();
  ASSERT_OK(Reader()->SeekToAsn(26));
  EXPECT_EQ(ReadAll(), Range(26, 40));
  ASSERT_OK(Reader()->SeekToAsn(1));
  EXPECT_EQ(Read(), "1");
}

TEST_F(TrailTest, SeekToAsnInAGapFindsTheNextRecord) {
  for (uint64_t asn : {10, 20, 30}) ASSERT_OK(writer_->Append(asn, 1, Payload(asn), 0));
  Sync();
  ASSERT_OK(Reader()->SeekToAsn(15));
  EXPECT_EQ(ReadAll(), "20 30 EOF");
}

TEST_F(TrailTest, SeekToAsnPastTheEndWaitsThere) {
  WriteN(5);
  Sync();
  ASSERT_OK(Reader()->SeekToAsn(9));
  EXPECT_EQ(Read(), "EOF");
  WriteN(5);
  Sync();
  EXPECT_EQ(ReadAll(), "6 7 8 9 10 EOF");
}

TEST_F(TrailTest, BackwardReadingCrossesSegments) {
  WriteN(30);
  Sync();
  ASSERT_OK(Reader()->SeekToEnd());
  EXPECT_EQ(ReadAllBack(), "30 29 28 27 26 25 24 23 22 21 20 19 18 17 16 15 14 13 12 11 10 "
                           "9 8 7 6 5 4 3 2 1 EOF");
}

TEST_F(TrailTest, SeekToEndStopsAtTheDurableEnd) {
  WriteN(5);
  Sync();
  WriteN(5);
  ASSERT_OK(Reader()->SeekToEnd());
  EXPECT_EQ(Read(), "EOF");
  EXPECT_EQ(ReadBack(), "5");
}

TEST_F(TrailTest, PrevThenNextReturnsTheSameRecord) {
  WriteN(3);
  Sync();
  ASSERT_OK(Reader()->SeekToEnd());
  EXPECT_EQ(ReadBack(), "3");
  EXPECT_EQ(Read(), "3");
}

TEST_F(TrailTest, MissingSegmentIsNotFoundNamingTheFile) {
  WriteN(30);
  Sync();
  ASSERT_OK(Reader()->SeekToPosition({1, kHeaderSize}));
  ASSERT_OK(mem_.Remove(SegPath(2)));
  std::string all = ReadAll();
  EXPECT_THAT(all, HasSubstr("NOT_FOUND"));
  EXPECT_THAT(all, HasSubstr("MAT.0000000002"));
}

// --- Damage --------------------------------------------------------------------

TEST_F(TrailTest, ChecksumMismatchInPayloadStopsReader) {
  WriteN(3);
  Sync();
  Record r = Find(2);
  CorruptByte({r.pos.segment, r.pos.offset + 30});
  EXPECT_EQ(Read(), "1");
  EXPECT_THAT(Reader()->Next(), StatusIs(absl::StatusCode::kDataLoss,
                                         HasSubstr(absl::StrCat("MAT.0000000001 offset ", r.pos.offset,
                                                                ": checksum mismatch"))));
  EXPECT_THAT(Reader()->Next(), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("checksum")));
}

TEST_F(TrailTest, DamagedFrameHeaderStopsReader) {
  WriteN(3);
  Sync();
  Record r = Find(2);
  CorruptByte({r.pos.segment, r.pos.offset + 9});  // in the ASN
  EXPECT_THAT(ReadAll(), HasSubstr(absl::StrCat("DATA_LOSS: /audit/MAT.0000000001 offset ",
                                                r.pos.offset, ": checksum mismatch")));
}

TEST_F(TrailTest, DamagedLengthStopsReader) {
  WriteN(3);
  Sync();
  Record r = Find(2);
  CorruptByte({r.pos.segment, r.pos.offset + 7});  // length becomes huge
  EXPECT_THAT(ReadAll(), HasSubstr(absl::StrCat("offset ", r.pos.offset, ": frame length")));
}

TEST_F(TrailTest, DamagedTrailerStopsBackwardReader) {
  WriteN(3);
  Sync();
  Record r = Find(3);
  CorruptByte({r.next.segment, r.next.offset - 2});
  ASSERT_OK(Reader()->SeekToEnd());
  EXPECT_THAT(ReadAllBack(), HasSubstr(absl::StrCat("offset ", r.next.offset - 4, ": trailer")));
}

TEST_F(TrailTest, DamagedSegmentHeaderIsDataLoss) {
  WriteN(30);
  Sync();
  CorruptByte({2, 30});
  EXPECT_THAT(ReadAll(), HasSubstr("MAT.0000000002 offset 0: header checksum mismatch"));
  EXPECT_THAT(Reader()->SeekToAsn(25), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("MAT.0000000002")));
}

TEST_F(TrailTest, DamageInAnOlderSegmentStopsReader) {
  WriteN(30);
  Sync();
  Record r = Find(5);
  CorruptByte({1, r.pos.offset + 25});
  EXPECT_EQ(ReadAll(), absl::StrCat("1 2 3 4 DATA_LOSS: /audit/MAT.0000000001 offset ",
                                    r.pos.offset, ": checksum mismatch"));
}

TEST_F(TrailTest, RecordsEndingBeforeTheDurableEndIsDamage) {
  WriteN(3);
  Sync();
  Record r = Find(3);
  Scribble(r.pos, std::string(r.next.offset - r.pos.offset, '\0'));
  EXPECT_THAT(ReadAll(), HasSubstr(absl::StrCat("offset ", r.pos.offset,
                                                ": records end before the durable end")));
}

// --- Torn tails and power loss -----------------------------------------------

TEST_F(TrailTest, TornPartialFrameIsRepairedOnOpen) {
  WriteN(3);
  Sync();
  Position end = writer_->durable_end().pos;
  DropUnsynced();
  Scribble(end, Frame(4).substr(0, 50));
  ASSERT_OK(OpenWriter());
  EXPECT_EQ(writer_->last_asn(), 3u);
  WriteN(1);
  Sync();
  EXPECT_EQ(ReadAll(), "1 2 3 4 EOF");
}

TEST_F(TrailTest, TornFrameFollowedByZerosIsRepairedWithoutAnEndHint) {
  WriteN(3);
  Sync();
  Position end = writer_->durable_end().pos;
  DropUnsynced();
  ForgetEnd();
  std::string f = Frame(4);
  Scribble(end, f.substr(0, 30) + std::string(f.size() - 30, '\0'));
  ASSERT_OK(OpenWriter());
  EXPECT_EQ(ReadAll(), "1 2 3 EOF");
  EXPECT_EQ(Contents(1).substr(end.offset, f.size()), std::string(f.size(), '\0'));
}

TEST_F(TrailTest, GarbageAfterTheDurableEndIsCutOnOpen) {
  WriteN(3);
  Sync();
  Position end = writer_->durable_end().pos;
  DropUnsynced();
  std::string f4 = Frame(4), f5 = Frame(5);
  Scribble(end, f4.substr(0, 40) + std::string(f4.size() - 40, '\0') + f5);
  ASSERT_OK(OpenWriter());
  EXPECT_EQ(writer_->last_asn(), 3u);
  EXPECT_EQ(Contents(1).find(f5), std::string::npos);
}

TEST_F(TrailTest, InvalidFrameBeforeTheDurableEndFailsOpen) {
  WriteN(3);
  Sync();
  Record r = Find(2);
  DropUnsynced();
  CorruptByte({1, r.pos.offset + 30});
  EXPECT_THAT(OpenWriter(), StatusIs(absl::StatusCode::kDataLoss,
                                     HasSubstr(absl::StrCat("MAT.0000000001 offset ", r.pos.offset))));
}

TEST_F(TrailTest, InvalidFrameFollowedByRecordsFailsOpenWithoutAHint) {
  WriteN(3);
  Sync();
  Record r = Find(2);
  DropUnsynced();
  ForgetEnd();
  CorruptByte({1, r.pos.offset + 30});
  EXPECT_THAT(OpenWriter(), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("checksum mismatch")));
}

TEST_F(TrailTest, TornNewestSegmentHeaderIsRemovedOnOpen) {
  WriteN(10);
  Sync();
  DropUnsynced();
  ASSERT_OK(mem_.SetContents(SegPath(2), EncodeHeader({2, 11, 968, 0, kName}).substr(0, 60)));
  ASSERT_OK(OpenWriter());
  EXPECT_THAT(Segments(), ElementsAre(1));
  WriteN(3);
  Sync();
  EXPECT_EQ(ReadAll(), Range(1, 13));
}

TEST_F(TrailTest, DamagedNewestHeaderBeforeTheDurableEndFailsOpen) {
  WriteN(20);
  Sync();
  DropUnsynced();
  CorruptByte({2, 40});
  EXPECT_THAT(OpenWriter(), StatusIs(absl::StatusCode::kDataLoss,
                                     HasSubstr("MAT.0000000002 offset 0: header checksum")));
}

TEST_F(TrailTest, LostUnsyncedDataLeavesExactlyTheSyncedRecords) {
  WriteN(20);
  Sync();
  WriteN(10);  // buffered only: a rollover happens on the next Sync
  DropUnsynced();
  ASSERT_OK(OpenWriter());
  EXPECT_EQ(writer_->last_asn(), 20u);
  EXPECT_EQ(ReadAll(), Range(1, 20));
}

TEST_F(TrailTest, PowerLossAfterRolloverKeepsAnEmptySegmentUsable) {
  for (uint64_t asn = 1; asn <= 10; ++asn) ASSERT_OK(writer_->Append(asn, 1, Payload(asn), 0));
  ASSERT_OK(writer_->Append(100, 1, Payload(100), 0));  // rolls over to segment 2
  Sync();
  DropUnsynced();
  Truncate(2, kHeaderSize);  // the header survived, the record did not
  ForgetEnd();
  ASSERT_OK(OpenWriter());
  EXPECT_EQ(writer_->last_asn(), 10u);
  ASSERT_OK(writer_->Append(11, 1, Payload(11), 0));  // below the header's first ASN
  Sync();
  ASSERT_OK(Reader()->SeekToAsn(11));
  EXPECT_EQ(ReadAll(), "11 EOF");
}

// --- Write and sync errors -----------------------------------------------------

TEST_F(TrailTest, EnospcOnWriteIsReturnedAndRetryingSyncRecovers) {
  WriteN(2);
  fs_.SetWriteError(ErrnoToStatus(ENOSPC, "pwrite"));
  EXPECT_THAT(writer_->Sync(), StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("No space")));
  EXPECT_THAT(writer_->Append(3, 1, "x", 0), StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("No space")));
  EXPECT_EQ(end_->Get().asn, 0u);
  fs_.SetWriteError(absl::OkStatus());
  Sync();
  EXPECT_EQ(ReadAll(), "1 2 EOF");
}

TEST_F(TrailTest, EnospcCreatingANewSegmentIsRetried) {
  WriteN(10);
  Sync();
  fs_.SetPathFilter("MAT.0000000002");
  fs_.SetWriteError(ErrnoToStatus(ENOSPC, "fallocate"));
  WriteN(3);
  EXPECT_THAT(writer_->Sync(), StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("MAT.0000000002")));
  fs_.SetWriteError(absl::OkStatus());
  Sync();
  EXPECT_EQ(ReadAll(), Range(1, 13));
}

TEST_F(TrailTest, FailedFsyncIsRetriedByRewritingTheData) {
  WriteN(2);
  fs_.SetSyncError(absl::InternalError("EIO"));
  EXPECT_THAT(writer_->Sync(), StatusIs(absl::StatusCode::kInternal, HasSubstr("EIO")));
  fs_.SetSyncError(absl::OkStatus());
  Sync();
  DropUnsynced();
  ASSERT_OK(OpenWriter());
  EXPECT_EQ(ReadAll(), "1 2 EOF");
}

// --- Truncation and retention --------------------------------------------------

TEST_F(TrailTest, TruncateToCutsLaterRecordsAndSegments) {
  WriteN(40);
  Sync();
  ASSERT_OK(TruncateAfter(20));
  EXPECT_THAT(Segments(), ElementsAre(1, 2));
  EXPECT_EQ(end_->Get().asn, 20u);
  WriteN(3);
  Sync();
  EXPECT_EQ(ReadAll(), Range(1, 23));
}

TEST_F(TrailTest, TruncateToSurvivesReopen) {
  WriteN(10);
  Sync();
  ASSERT_OK(TruncateAfter(4));
  DropUnsynced();
  ASSERT_OK(OpenWriter());
  EXPECT_EQ(writer_->last_asn(), 4u);
  EXPECT_EQ(ReadAll(), "1 2 3 4 EOF");
}

TEST_F(TrailTest, TruncateToANonBoundaryIsInvalidArgument) {
  WriteN(5);
  Sync();
  Position mid = Find(3).pos;
  mid.offset += 10;
  EXPECT_THAT(writer_->TruncateTo(End{3, mid, 0}), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ASN 3")));
}

TEST_F(TrailTest, TruncateToWithRecordsBufferedIsFailedPrecondition) {
  WriteN(5);
  Sync();
  Write();
  EXPECT_THAT(TruncateAfter(3),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("buffered")));
}

TEST_F(TrailTest, RemoveSegmentsBeforeKeepsTheRest) {
  WriteN(40);
  Sync();
  ASSERT_OK(writer_->RemoveSegmentsBefore(3));
  EXPECT_THAT(Segments(), ElementsAre(3, 4));
  EXPECT_EQ(ReadAll(), Range(21, 40));
  EXPECT_EQ(ReadAllBack(), "40 39 38 37 36 35 34 33 32 31 30 29 28 27 26 25 24 23 22 21 EOF");
}

TEST_F(TrailTest, RemoveSegmentsBeforeNeverRemovesTheCurrentSegment) {
  WriteN(20);
  Sync();
  ASSERT_OK(writer_->RemoveSegmentsBefore(100));
  EXPECT_THAT(Segments(), ElementsAre(2));
  WriteN(1);
  Sync();
  EXPECT_EQ(ReadAll(), Range(11, 21));
}

// --- Readers without a limit ---------------------------------------------------

TEST_F(TrailTest, UnlimitedReaderStopsAtATornTail) {
  WriteN(3);
  Sync();
  std::string f = Frame(4);
  Scribble(writer_->durable_end().pos, f.substr(0, 30));
  Reader(/*limited=*/false);
  EXPECT_EQ(ReadAll(), "1 2 3 EOF");
}

TEST_F(TrailTest, UnlimitedReaderReportsDamageFollowedByRecords) {
  WriteN(3);
  Sync();
  CorruptByte({1, Find(2).pos.offset + 30});
  Reader(/*limited=*/false);
  EXPECT_THAT(ReadAll(), HasSubstr("checksum mismatch"));
}

TEST_F(TrailTest, UnlimitedReaderSeesBufferedWritesOnceWritten) {
  WriteN(3);
  Sync();
  Reader(/*limited=*/false);
  EXPECT_EQ(ReadAll(), "1 2 3 EOF");
  WriteN(12);  // crosses into segment 2
  Sync();
  EXPECT_EQ(ReadAll(), Range(4, 15));
}

TEST_F(TrailTest, AppendWritesOutALargeUnsyncedBacklog) {
  segment_bytes_ = 64 << 20;
  ASSERT_OK(OpenWriter());
  WriteN(100, 100 << 10);  // 10 MiB, never synced by the caller
  EXPECT_GT(end_->Get().asn, 0u);
  EXPECT_GE(writer_->fsyncs(), 1u);
}

// --- Concurrency -----------------------------------------------------------------

TEST_F(TrailTest, ReaderTailingAWriterNeverPassesTheDurableEnd) {
  segment_bytes_ = 16 << 10;
  ASSERT_OK(OpenWriter());
  constexpr uint64_t kRecords = 3000;
  std::thread writer([&] {
    std::mt19937 rng(7);
    for (uint64_t asn = 1; asn <= kRecords; ++asn) {
      ASSERT_OK(writer_->Append(asn, 1, Payload(asn, 20 + rng() % 200), 0));
      if (rng() % 16 == 0 || asn == kRecords) {
        ASSERT_OK(writer_->Sync());
      }
    }
  });
  TrailReader* reader = Reader();
  uint64_t expect = 1;
  while (expect <= kRecords) {
    auto r = reader->NextWait(absl::Seconds(10));
    ASSERT_OK(r.status());
    ASSERT_TRUE(r->has_value()) << "stalled at " << expect;
    ASSERT_EQ((*r)->asn, expect);
    ASSERT_LE((*r)->next, end_->Get().pos) << "read past the durable end";
    ++expect;
  }
  writer.join();
}

TEST_F(TrailTest, GroupCommitSharesFsyncsAndLosesNothing) {
  segment_bytes_ = 64 << 10;
  ASSERT_OK(OpenWriter());
  constexpr int kThreads = 8, kPerThread = 200;
  std::atomic<uint64_t> next_asn{1};
  absl::Mutex order;  // ASNs must reach Append in order
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        {
          absl::MutexLock l(&order);
          uint64_t asn = next_asn++;
          ASSERT_OK(writer_->Append(asn, 1, Payload(asn), 0));
        }
        ASSERT_OK(writer_->Sync());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ReadAll(), Range(1, kThreads * kPerThread));
  EXPECT_LE(writer_->fsyncs(), uint64_t{kThreads * kPerThread} + 10);
}

// --- The shared end file -------------------------------------------------------

class SharedEndTest : public ::testing::Test {
 protected:
  SharedEndTest() {
    const char* base = getenv("TEST_TMPDIR");
    std::string tmpl = JoinPath(base ? base : "/tmp", "rdf_trail_test.XXXXXX");
    dir_ = mkdtemp(tmpl.data());
  }
  ~SharedEndTest() override { system(("rm -rf '" + dir_ + "'").c_str()); }
  std::string dir_;
};

TEST_F(SharedEndTest, ReaderHandleSeesWriterHandlePublish) {
  ASSERT_OK_AND_ASSIGN(auto writer, SharedEnd::Create(EndFilePath(dir_, "MAT")));
  ASSERT_OK_AND_ASSIGN(auto reader, SharedEnd::OpenReadOnly(EndFilePath(dir_, "MAT")));
  EXPECT_EQ(reader->Get().asn, 0u);
  writer->Publish(End{42, {3, 4096}, 777});
  End e = reader->Get();
  EXPECT_EQ(e.asn, 42u);
  EXPECT_EQ(e.pos, (Position{3, 4096}));
  EXPECT_EQ(e.time_us, 777);
}

TEST_F(SharedEndTest, OpenReadOnlyBeforeAnyWriterIsNotFound) {
  EXPECT_THAT(SharedEnd::OpenReadOnly(EndFilePath(dir_, "MAT")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("MAT.end")));
}

TEST_F(SharedEndTest, ReopenedWriterSeesTheLastPublishedEnd) {
  {
    ASSERT_OK_AND_ASSIGN(auto writer, SharedEnd::Create(EndFilePath(dir_, "MAT")));
    writer->Publish(End{9, {1, 500}, 1});
  }
  ASSERT_OK_AND_ASSIGN(auto writer, SharedEnd::Create(EndFilePath(dir_, "MAT")));
  EXPECT_EQ(writer->Get().asn, 9u);
}

// The writer trusts an end as exact only when it was published this boot
// (trail_writer.h); a new end file, or one from before the boot id field,
// is not.
TEST_F(SharedEndTest, EndKnowsItWasPublishedThisBoot) {
  {
    ASSERT_OK_AND_ASSIGN(auto writer, SharedEnd::Create(EndFilePath(dir_, "MAT")));
    EXPECT_FALSE(writer->PublishedThisBoot());
    writer->Publish(End{9, {1, 500}, 1});
    EXPECT_TRUE(writer->PublishedThisBoot());
  }
  ASSERT_OK_AND_ASSIGN(auto writer, SharedEnd::Create(EndFilePath(dir_, "MAT")));
  EXPECT_TRUE(writer->PublishedThisBoot());
}

TEST_F(SharedEndTest, WaitBeyondWakesOnPublish) {
  ASSERT_OK_AND_ASSIGN(auto writer, SharedEnd::Create(EndFilePath(dir_, "MAT")));
  ASSERT_OK_AND_ASSIGN(auto reader, SharedEnd::OpenReadOnly(EndFilePath(dir_, "MAT")));
  const absl::Time start = absl::Now();
  std::thread t([&] {
    absl::SleepFor(absl::Milliseconds(50));
    writer->Publish(End{1, {1, 200}, 0});
  });
  reader->WaitBeyond(0, absl::Seconds(20));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_EQ(reader->Get().asn, 1u);
  t.join();
}

TEST_F(SharedEndTest, WaitBeyondWakesAReaderInAnotherProcess) {
  ASSERT_OK_AND_ASSIGN(auto writer, SharedEnd::Create(EndFilePath(dir_, "MAT")));
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto reader = SharedEnd::OpenReadOnly(EndFilePath(dir_, "MAT"));
    if (!reader.ok()) _exit(2);
    (*reader)->WaitBeyond(0, absl::Seconds(20));
    _exit((*reader)->Get().asn == 7 ? 0 : 1);
  }
  const absl::Time start = absl::Now();
  absl::SleepFor(absl::Milliseconds(100));
  writer->Publish(End{7, {1, 300}, 0});
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST_F(SharedEndTest, WaitBeyondTimesOut) {
  ASSERT_OK_AND_ASSIGN(auto writer, SharedEnd::Create(EndFilePath(dir_, "MAT")));
  writer->Publish(End{5, {1, 200}, 0});
  const absl::Time start = absl::Now();
  writer->WaitBeyond(5, absl::Milliseconds(30));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(29));
  writer->WaitBeyond(4, absl::Seconds(20));  // already beyond: returns at once
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST_F(SharedEndTest, LocalEndWaitBeyondWakesOnPublish) {
  LocalEnd end;
  std::thread t([&] {
    absl::SleepFor(absl::Milliseconds(20));
    end.Publish(End{3, {1, 200}, 0});
  });
  end.WaitBeyond(2, absl::Seconds(20));
  EXPECT_EQ(end.Get().asn, 3u);
  t.join();
}

// The writer with its own end file on the real file system, a reader limited
// by that file through a second mapping, and repair by the end-file hint.
TEST_F(SharedEndTest, WriterAndReaderMeetThroughTheEndFile) {
  WriterOptions wo;
  wo.dir = JoinPath(dir_, "audit");
  wo.name = "MAT";
  wo.segment_bytes = 64 << 10;
  ASSERT_OK_AND_ASSIGN(auto writer, TrailWriter::Open(wo));
  ASSERT_OK_AND_ASSIGN(auto end, SharedEnd::OpenReadOnly(EndFilePath(wo.dir, "MAT")));
  ASSERT_OK_AND_ASSIGN(auto reader, TrailReader::Open(ReaderOptions{wo.dir, "MAT", FileSystem::Default(), end.get()}));
  for (uint64_t asn = 1; asn <= 1000; ++asn) ASSERT_OK(writer->Append(asn, 1, Payload(asn), 0));
  ASSERT_OK(writer->Sync());
  ASSERT_OK(writer->Append(1001, 1, Payload(1001), 0));  // never synced
  uint64_t n = 0;
  while (true) {
    ASSERT_OK_AND_ASSIGN(auto r, reader->Next());
    if (!r.has_value()) break;
    ASSERT_EQ(r->asn, ++n);
  }
  EXPECT_EQ(n, 1000u);
  EXPECT_EQ(end->Get().asn, 1000u);
  writer.reset();
  ASSERT_OK_AND_ASSIGN(writer, TrailWriter::Open(wo));
  EXPECT_EQ(writer->last_asn(), 1000u);
}

}  // namespace
}  // namespace rdf::trail
