#include "purger/purge_policy.h"

#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/state/save_point.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdf::purger {
namespace {

using ::testing::ElementsAreArray;

// Five segments of 100 ASNs each: segment n holds ASNs 100(n-1)+1 ..
// 100n (the newest, 5, is still being written).
std::vector<trail::SegmentInfo> FiveSegments() {
  std::vector<trail::SegmentInfo> segs;
  for (uint64_t n = 1; n <= 5; ++n) segs.push_back({n, 100 * (n - 1) + 1, 4096, absl::StrCat(n)});
  return segs;
}

UpdaterPosition At(uint64_t restart_segment, uint64_t applied_asn) {
  return {true, {restart_segment, 0}, applied_asn};
}
constexpr UpdaterPosition kNoUpdater{};
const UpdaterPosition kFarAhead = At(99, 10'000);
constexpr UndoHold kNothingOpen{10'001, 0};

struct Case {
  std::string name;
  std::string trail;  // kMasterImageTrail or a volume trail
  UndoHold hold = kNothingOpen;
  UpdaterPosition data01 = kFarAhead;
  UpdaterPosition data02 = kFarAhead;
  size_t retain = 2;
  std::vector<uint64_t> purged_last_asns;  // of the segments that go
  std::string held_by;
  bool empty_trail = false;
};

const Case kCases[] = {
    {.name = "RetainCountKeepsTheNewest", .trail = "MIT",
     .purged_last_asns = {100, 200, 300}, .held_by = "retain_count"},
    {.name = "RetainCountOfThree", .trail = "DATA01", .retain = 3,
     .purged_last_asns = {100, 200}, .held_by = "retain_count"},
    {.name = "RetainCountOfAllOfThem", .trail = "DATA01", .retain = 5,
     .purged_last_asns = {}, .held_by = "retain_count"},
    {.name = "VolumeSegmentsBehindTheRestartPointGo", .trail = "DATA01", .data01 = At(3, 250),
     .purged_last_asns = {100, 200}, .held_by = "updater-DATA01"},
    {.name = "VolumeSegmentOfTheRestartPointStays", .trail = "DATA01", .data01 = At(1, 50),
     .purged_last_asns = {}, .held_by = "updater-DATA01"},
    {.name = "VolumeTrailIsJudgedByItsOwnUpdaterOnly", .trail = "DATA02", .data01 = At(1, 0),
     .data02 = At(2, 150), .purged_last_asns = {100}, .held_by = "updater-DATA02"},
    {.name = "VolumeWithoutAnUpdaterKeepsEverything", .trail = "DATA01", .data01 = kNoUpdater,
     .purged_last_asns = {}, .held_by = "updater-DATA01"},
    {.name = "VolumeTrailNotInTheConfigKeepsEverything", .trail = "DATA09",
     .purged_last_asns = {}, .held_by = "updater-DATA09"},
    {.name = "MitSegmentBehindEveryUpdaterGoes", .trail = "MIT", .data01 = At(4, 301),
     .data02 = At(4, 350), .purged_last_asns = {100, 200, 300}, .held_by = "retain_count"},
    {.name = "MitWaitsForTheUpdaterBehind", .trail = "MIT", .data01 = At(4, 301),
     .data02 = At(2, 150), .purged_last_asns = {100}, .held_by = "updater-DATA02"},
    {.name = "MitLastAsnMustBeBelowTheApplied", .trail = "MIT", .data02 = At(2, 200),
     .purged_last_asns = {100}, .held_by = "updater-DATA02"},
    {.name = "MitOfTwoEquallySlowUpdatersNamesTheFirst", .trail = "MIT", .data01 = At(2, 150),
     .data02 = At(2, 150), .purged_last_asns = {100}, .held_by = "updater-DATA01"},
    {.name = "MitWithAnUpdaterThatNeverRanKeepsEverything", .trail = "MIT",
     .data02 = kNoUpdater, .purged_last_asns = {}, .held_by = "updater-DATA02"},
    {.name = "LongTransactionHoldsTheMit", .trail = "MIT", .hold = {150, 77},
     .purged_last_asns = {100}, .held_by = "transaction 77"},
    {.name = "LongTransactionHoldsEveryVolumeTrail", .trail = "DATA02", .hold = {150, 77},
     .purged_last_asns = {100}, .held_by = "transaction 77"},
    {.name = "SegmentEndingRightBeforeTheTransactionGoes", .trail = "DATA01", .hold = {201, 77},
     .purged_last_asns = {100, 200}, .held_by = "transaction 77"},
    {.name = "UpdaterIsNamedBeforeTheTransaction", .trail = "DATA01", .hold = {50, 77},
     .data01 = At(1, 10), .purged_last_asns = {}, .held_by = "updater-DATA01"},
    {.name = "NothingOpenHoldsUpToTheSavePoint", .trail = "MIT", .hold = {251, 0},
     .purged_last_asns = {100, 200}, .held_by = "transaction 0"},
    {.name = "EmptyMit", .trail = "MIT", .purged_last_asns = {}, .held_by = "",
     .empty_trail = true},
    {.name = "EmptyVolumeTrail", .trail = "DATA01", .data01 = kNoUpdater,
     .purged_last_asns = {}, .held_by = "", .empty_trail = true},
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class DecidePurgeTest : public ::testing::TestWithParam<Case> {};

TEST_P(DecidePurgeTest, Decides) {
  const Case& c = GetParam();
  PurgeFacts facts;
  facts.hold = c.hold;
  facts.retain_count = c.retain;
  facts.updaters = {{"DATA01", c.data01}, {"DATA02", c.data02}};
  const std::vector<trail::SegmentInfo> segments =
      c.empty_trail ? std::vector<trail::SegmentInfo>{} : FiveSegments();
  TrailDecision d = DecidePurge(facts, c.trail, segments);
  EXPECT_THAT(d.last_asn, ElementsAreArray(c.purged_last_asns));
  EXPECT_EQ(d.held_by, c.held_by);
}

INSTANTIATE_TEST_SUITE_P(Table, DecidePurgeTest, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& i) { return i.param.name; });

TEST(RetainCountTest, IsAtLeastTwo) {
  EXPECT_EQ(RetainCount(0), 2u);
  EXPECT_EQ(RetainCount(1), 2u);
  EXPECT_EQ(RetainCount(7), 7u);
}

proto::SavePoint SavePointAt(uint64_t asn) {
  proto::SavePoint sp;
  sp.set_asn(asn);
  proto::TrailEnd* te = sp.add_trails();
  te->set_trail("DATA01");
  te->set_segment(3);
  te->set_offset(512);
  return sp;
}

TEST(UndoHoldTest, WithNothingOpenEverythingUpToTheSavePointMayGo) {
  UndoHold h = UndoHoldOf(SavePointAt(500));
  EXPECT_EQ(h.asn, 501u);
  EXPECT_EQ(h.txid, 0u);
}

TEST(UndoHoldTest, TheOldestOpenTransactionHoldsFromItsFirstAsn) {
  proto::SavePoint sp = SavePointAt(500);
  sp.set_oldest_open_asn(120);
  proto::OpenTransaction* newer = sp.add_open();
  newer->set_txid(9);
  newer->set_first_asn(300);
  proto::OpenTransaction* oldest = sp.add_open();
  oldest->set_txid(4);
  oldest->set_first_asn(120);
  UndoHold h = UndoHoldOf(sp);
  EXPECT_EQ(h.asn, 120u);
  EXPECT_EQ(h.txid, 4u);
}

TEST(CaughtUpTest, AnUpdaterAtItsTrailsEndHasAppliedThroughTheSavePoint) {
  UpdaterPosition p = At(3, 480);
  p.restart.offset = 512;  // DATA01's end in the save point
  EXPECT_EQ(CaughtUp(p, SavePointAt(500), "DATA01").applied_asn, 500u);
}

TEST(CaughtUpTest, AnUpdaterShortOfItsTrailsEndHasAppliedWhatItSays) {
  UpdaterPosition p = At(3, 480);
  p.restart.offset = 256;
  EXPECT_EQ(CaughtUp(p, SavePointAt(500), "DATA01").applied_asn, 480u);
  EXPECT_EQ(CaughtUp(At(3, 480), SavePointAt(500), "DATA02").applied_asn, 480u)
      << "no end of its trail in the save point";
  EXPECT_FALSE(CaughtUp(kNoUpdater, SavePointAt(500), "DATA01").known);
}

TEST(HeldTooLongTest, WarnsPastFourTimesTheRetainCount) {
  PurgeFacts facts;
  facts.hold = {150, 77};
  facts.retain_count = 2;
  EXPECT_TRUE(HeldTooLongByTransaction(facts, HeldBy::kTransaction, 9));
  EXPECT_FALSE(HeldTooLongByTransaction(facts, HeldBy::kTransaction, 8));
  EXPECT_FALSE(HeldTooLongByTransaction(facts, HeldBy::kUpdater, 9));
  facts.hold.txid = 0;
  EXPECT_FALSE(HeldTooLongByTransaction(facts, HeldBy::kTransaction, 9));
}

}  // namespace
}  // namespace rdf::purger
