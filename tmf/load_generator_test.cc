#include "tmf/load_generator.h"

#include <algorithm>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace rdf::tmf {
namespace {

// The vocabulary: Draw(n) lengths of a load whose values run from `min`
// to `max` bytes, from a fixed seed.
class ValueLengthTest : public ::testing::Test {
 protected:
  std::vector<uint64_t> Draw(uint64_t min, uint64_t max, int n = 20000) {
    LoadOptions o;
    o.min_value_bytes = min;
    o.value_bytes = max;
    std::vector<uint64_t> out;
    for (int i = 0; i < n; ++i) out.push_back(ValueLength(o, rng_));
    std::sort(out.begin(), out.end());
    return out;
  }
  std::mt19937_64 rng_{17};
};

TEST_F(ValueLengthTest, WithoutMinimumEveryValueHasValueBytes) {
  const std::mt19937_64 before = rng_;
  EXPECT_EQ(Draw(0, 100, 10), std::vector<uint64_t>(10, 100));
  EXPECT_EQ(rng_, before);  // the generator is untouched: old runs repeat
}

TEST_F(ValueLengthTest, MinimumNotBelowValueBytesGivesValueBytes) {
  EXPECT_EQ(Draw(4096, 1024, 10), std::vector<uint64_t>(10, 1024));
}

TEST_F(ValueLengthTest, LengthsStayWithinTheRangeAndReachBothEnds) {
  std::vector<uint64_t> v = Draw(1024, 1 << 20);
  EXPECT_GE(v.front(), 1024u);
  EXPECT_LT(v.front(), 1100u);
  EXPECT_LE(v.back(), 1u << 20);
  EXPECT_GT(v.back(), 950'000u);
}

TEST_F(ValueLengthTest, LengthsAreLogUniform) {
  // Each factor of 2 from 1 KiB to 1 MiB holds a tenth of the values; the
  // median is the geometric mean, 32 KiB.
  std::vector<uint64_t> v = Draw(1024, 1 << 20);
  EXPECT_NEAR(v[v.size() / 2], 32768, 2500);
  const auto below_2k = std::lower_bound(v.begin(), v.end(), 2048) - v.begin();
  EXPECT_NEAR(below_2k / double(v.size()), 0.1, 0.01);
}

}  // namespace
}  // namespace rdf::tmf
