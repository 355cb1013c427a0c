#include "tmf/audit_retention.h"

#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"

namespace rdf::tmf {
namespace {

// Five audit segments of 100 bytes: segment n starts at ASN 100(n-1)+1.
std::vector<trail::SegmentInfo> FiveSegments() {
  std::vector<trail::SegmentInfo> segs;
  for (uint64_t n = 1; n <= 5; ++n) segs.push_back({n, 100 * (n - 1) + 1, 100, absl::StrCat(n)});
  return segs;
}

struct KeepFromCase {
  std::string name;
  uint64_t bound;
  size_t retain;
  uint64_t keep_from;
  bool empty = false;
};

const KeepFromCase kKeepFromCases[] = {
    {"SegmentsWhollyBelowTheBoundGo", 250, 2, 3},
    {"TheBoundAtASegmentsFirstAsnKeepsThatSegment", 201, 2, 3},
    {"TheBoundAtASegmentsLastAsnKeepsThatSegment", 200, 2, 2},
    {"RetainCountKeepsTheNewest", 100'000, 2, 4},
    {"RetainCountOfOne", 100'000, 1, 5},
    {"RetainCountOfAllOfThemKeepsTheOldest", 100'000, 5, 1},
    {"BoundInTheFirstSegmentKeepsEverything", 50, 2, 1},
    {"BoundBelowEverySegmentIsNoDecision", 0, 2, 0},
    {"NoSegments", 250, 2, 0, true},
};

void PrintTo(const KeepFromCase& c, std::ostream* os) { *os << c.name; }

class KeepFromTest : public ::testing::TestWithParam<KeepFromCase> {};

TEST_P(KeepFromTest, Decides) {
  const KeepFromCase& c = GetParam();
  EXPECT_EQ(KeepFrom(c.empty ? std::vector<trail::SegmentInfo>{} : FiveSegments(), c.bound,
                     c.retain),
            c.keep_from);
}

INSTANTIATE_TEST_SUITE_P(Table, KeepFromTest, ::testing::ValuesIn(kKeepFromCases),
                         [](const ::testing::TestParamInfo<KeepFromCase>& i) {
                           return i.param.name;
                         });

// What is kept: whether a pin holds, from which segment, whether older
// ones go, the bytes kept and the bytes held for the backup.
struct Keep {
  bool pinned;
  uint64_t keep_from;
  bool remove;
  uint64_t kept_bytes;
  uint64_t held_bytes;
};

struct RetentionCase {
  std::string name;
  uint64_t recovery_bound = 100'000;  // tmf's own recovery needs nothing
  PinFiles pin = {};
  uint64_t bound_bytes = 1'000;
  proto::TmfConfig::RetentionPolicy policy = proto::TmfConfig::REFUSE_COMMITS;
  RetentionState state = {};  // {warned, refusing} before the pass
  Keep keep = {};
  std::string alarms = "";    // "release", "refuse", "warn", "recovered"
  RetentionState next = {};   // after it
};

constexpr auto kRelease = proto::TmfConfig::RELEASE_PIN;

const RetentionCase kRetentionCases[] = {
    {.name = "NoPinKeepsTheRetainCount", .keep = {false, 4, true, 200, 200}},
    {.name = "RecoveryBoundKeepsAuditOfAnUnfinishedTransaction", .recovery_bound = 150,
     .keep = {false, 2, true, 400, 400}},
    {.name = "PinKeepsTheSegmentHoldingPinPlusOne", .pin = {.pin = 150},
     .keep = {true, 2, true, 400, 400}},
    {.name = "PinAtASegmentsEndLetsItGo", .pin = {.pin = 200}, .keep = {true, 3, true, 300, 300}},
    {.name = "AuditKeptForTmfsRecoveryIsNotHeldForThePin", .recovery_bound = 120,
     .pin = {.pin = 450}, .bound_bytes = 200, .keep = {true, 2, true, 400, 100}},
    {.name = "UnreadablePinHoldsEverything", .pin = {.unreadable = true},
     .keep = {true, 1, false, 500, 500}},
    {.name = "ReleasedPinIsIgnored", .pin = {.pin = 150, .released_to = 200},
     .keep = {false, 4, true, 200, 200}},
    {.name = "PinPastTheReleaseIsHonouredAgain", .pin = {.pin = 250, .released_to = 200},
     .keep = {true, 3, true, 300, 300}},
    {.name = "EightyPercentWarns", .pin = {.pin = 150}, .bound_bytes = 500,
     .keep = {true, 2, true, 400, 400}, .alarms = "warn", .next = {true, false}},
    {.name = "EightyPercentWarnsOnce", .pin = {.pin = 150}, .bound_bytes = 500,
     .state = {true, false}, .keep = {true, 2, true, 400, 400}, .next = {true, false}},
    {.name = "TheBoundRefusesCommitsAndWarns", .pin = {.pin = 150}, .bound_bytes = 400,
     .keep = {true, 2, true, 400, 400}, .alarms = "refuse warn", .next = {true, true}},
    {.name = "RefusingGoesOnWithoutNewEvents", .pin = {.pin = 150}, .bound_bytes = 400,
     .state = {true, true}, .keep = {true, 2, true, 400, 400}, .next = {true, true}},
    {.name = "UnderEightyPercentRecovers", .pin = {.pin = 350}, .bound_bytes = 400,
     .state = {true, true}, .keep = {true, 4, true, 200, 200}, .alarms = "recovered"},
    {.name = "BetweenEightyPercentAndTheBoundStillRefuses", .pin = {.pin = 250},
     .bound_bytes = 350, .state = {true, true}, .keep = {true, 3, true, 300, 300},
     .next = {true, true}},
    {.name = "WithoutAPinARefusalEndsOnlyUnderEightyPercentOfWhatIsKept",
     .recovery_bound = 150, .bound_bytes = 400, .state = {true, true},
     .keep = {false, 2, true, 400, 400}, .next = {true, true}},
    {.name = "ReleasePinAtTheBoundDoesNothingElse", .pin = {.pin = 150}, .bound_bytes = 400,
     .policy = kRelease, .state = {true, false}, .keep = {true, 2, true, 400, 400},
     .alarms = "release", .next = {true, false}},
    {.name = "ReleasePinBelowTheBoundOnlyWarns", .pin = {.pin = 150}, .bound_bytes = 500,
     .policy = kRelease, .keep = {true, 2, true, 400, 400}, .alarms = "warn",
     .next = {true, false}},
};

std::string Alarms(const RetentionDecision& d) {
  std::vector<std::string> a;
  if (d.release_pin) a.push_back("release");
  if (d.refuse) a.push_back("refuse");
  if (d.warn) a.push_back("warn");
  if (d.recovered) a.push_back("recovered");
  return absl::StrJoin(a, " ");
}

void PrintTo(const RetentionCase& c, std::ostream* os) { *os << c.name; }

class DecideRetentionTest : public ::testing::TestWithParam<RetentionCase> {};

TEST_P(DecideRetentionTest, Decides) {
  const RetentionCase& c = GetParam();
  RetentionSettings settings{2, c.bound_bytes, c.policy};
  RetentionDecision d = DecideRetention(FiveSegments(), c.recovery_bound, c.pin, settings, c.state);
  EXPECT_EQ(d.pin.pinned, c.keep.pinned);
  EXPECT_EQ(d.keep_from, c.keep.keep_from);
  EXPECT_EQ(d.remove, c.keep.remove);
  EXPECT_EQ(d.kept_bytes, c.keep.kept_bytes);
  EXPECT_EQ(d.kept_segments, c.keep.kept_bytes / 100);
  EXPECT_EQ(d.held_bytes, c.keep.held_bytes);
  EXPECT_EQ(Alarms(d), c.alarms);
  EXPECT_EQ(d.next.warned, c.next.warned);
  EXPECT_EQ(d.next.refusing, c.next.refusing);
}

INSTANTIATE_TEST_SUITE_P(Table, DecideRetentionTest, ::testing::ValuesIn(kRetentionCases),
                         [](const ::testing::TestParamInfo<RetentionCase>& i) {
                           return i.param.name;
                         });

TEST(PinOfTest, UnreadablePinIsPinnedAtZero) {
  Pin p = PinOf({.unreadable = true, .pin = 700});
  EXPECT_TRUE(p.pinned);
  EXPECT_EQ(p.asn, 0u);
}

TEST(PinOfTest, NoPinFileIsNotPinned) { EXPECT_FALSE(PinOf({}).pinned); }

TEST(RetentionWarnBytesTest, IsEightTenthsRoundedDownFirst) {
  EXPECT_EQ(RetentionWarnBytes(1'000), 800u);
  EXPECT_EQ(RetentionWarnBytes(1'009), 800u);
  EXPECT_EQ(RetentionWarnBytes(9), 0u);
}

}  // namespace
}  // namespace rdf::tmf
