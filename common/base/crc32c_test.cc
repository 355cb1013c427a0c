#include "common/base/crc32c.h"

#include <random>
#include <string>

#include "gtest/gtest.h"

namespace rdf::crc32c {
namespace internal_testing {
// The table implementation, defined in crc32c.cc (not in the header: only
// this test compares it with the hardware path).
uint32_t ExtendPortable(uint32_t init_crc, const char* data, size_t n);
}  // namespace internal_testing
namespace {

uint32_t Crc(const std::string& s) { return Value(s.data(), s.size()); }

TEST(Crc32c, MatchesRfc3720Vectors) {
  EXPECT_EQ(Crc(std::string(32, '\0')), 0x8a9136aau);
  EXPECT_EQ(Crc(std::string(32, '\xff')), 0x62a8ab43u);
  std::string ascending, descending;
  for (int i = 0; i < 32; ++i) {
    ascending.push_back(static_cast<char>(i));
    descending.push_back(static_cast<char>(31 - i));
  }
  EXPECT_EQ(Crc(ascending), 0x46dd794eu);
  EXPECT_EQ(Crc(descending), 0x113fdb5cu);
}

TEST(Crc32c, MatchesCheckValue) { EXPECT_EQ(Crc("123456789"), 0xe3069283u); }

TEST(Crc32c, ExtendEqualsValueOfConcatenation) {
  std::string a = "hello ", b = "world, this is a longer tail of bytes";
  EXPECT_EQ(Extend(Crc(a), b.data(), b.size()), Crc(a + b));
}

TEST(Crc32c, EmptyInputKeepsCrc) {
  EXPECT_EQ(Value("", 0), 0u);
  EXPECT_EQ(Extend(0x12345678u, "", 0), 0x12345678u);
}

TEST(Crc32c, TableAndHardwareAgreeOnRandomData) {
  std::mt19937 rng(301);
  for (int len = 0; len < 300; ++len) {
    std::string s(len, '\0');
    for (char& c : s) c = static_cast<char>(rng());
    for (size_t skip : {0, 1, 3, 7}) {  // unaligned starts
      if (skip > s.size()) continue;
      ASSERT_EQ(Value(s.data() + skip, s.size() - skip),
                internal_testing::ExtendPortable(0, s.data() + skip, s.size() - skip))
          << "len " << len << " skip " << skip;
    }
  }
}

TEST(Crc32c, MaskRoundTripsAndDiffers) {
  uint32_t crc = Crc("foo");
  EXPECT_NE(Mask(crc), crc);
  EXPECT_NE(Mask(Mask(crc)), crc);
  EXPECT_EQ(Unmask(Mask(crc)), crc);
  EXPECT_EQ(Unmask(Unmask(Mask(Mask(crc)))), crc);
}

}  // namespace
}  // namespace rdf::crc32c
