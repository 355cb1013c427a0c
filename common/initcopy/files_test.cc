#include "common/initcopy/files.h"

#include <string>

#include "common/base/crc32c.h"
#include "common/base/file_system.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdf::initcopy {
namespace {

using ::rdf::testing::StatusIs;
using ::testing::HasSubstr;

uint32_t Crc(const std::string& s) { return crc32c::Value(s.data(), s.size()); }

TEST(CheckChunkTest, ChunkAtTheEndIsAppended) {
  EXPECT_EQ(*CheckChunk(0, 0, "abc", Crc("abc")), ChunkAction::kAppend);
  EXPECT_EQ(*CheckChunk(3, 3, "de", Crc("de")), ChunkAction::kAppend);
}

TEST(CheckChunkTest, LastChunkAgainIsADuplicate) {
  EXPECT_EQ(*CheckChunk(5, 3, "de", Crc("de")), ChunkAction::kDuplicate);
}

TEST(CheckChunkTest, GapIsRefused) {
  EXPECT_THAT(CheckChunk(3, 4, "x", Crc("x")).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("a chunk is missing")));
}

TEST(CheckChunkTest, OverlapIsRefused) {
  EXPECT_THAT(CheckChunk(5, 2, "de", Crc("de")).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("overlaps")));
}

TEST(CheckChunkTest, BadCrcIsDataLoss) {
  EXPECT_THAT(CheckChunk(0, 0, "abc", Crc("abd")).status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("crc32c")));
}

TEST(CheckChunkTest, OversizedChunkIsRefused) {
  const std::string big(kMaxChunkBytes + 1, 'x');
  EXPECT_THAT(CheckChunk(0, 0, big, Crc(big)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("over the limit")));
}

class ChunkFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = rdf::testing::MakeTestDir("initialize_files_test");
    path_ = JoinPath(dir_, "data.mdb");
  }
  void TearDown() override { rdf::testing::RemoveTestDir(dir_); }
  absl::StatusOr<uint64_t> Append(uint64_t offset, const std::string& s) {
    return AppendChunk(path_, offset, s, Crc(s));
  }
  std::string Read(uint64_t offset, uint32_t n) { return *ReadChunk(path_, offset, n); }

  std::string dir_, path_;
};

TEST_F(ChunkFileTest, ChunksAppendInOrderAndReadBack) {
  EXPECT_EQ(*Append(0, "hello "), 6u);
  EXPECT_EQ(*Append(6, "world"), 11u);
  EXPECT_EQ(Read(0, 100), "hello world");
  EXPECT_EQ(Read(6, 3), "wor");
  EXPECT_EQ(Read(11, 3), "");
}

TEST_F(ChunkFileTest, ResentChunkChangesNothing) {
  ASSERT_OK(Append(0, "abc").status());
  ASSERT_OK(Append(3, "def").status());
  EXPECT_EQ(*Append(3, "def"), 6u);
  EXPECT_EQ(Read(0, 100), "abcdef");
}

TEST_F(ChunkFileTest, GapLeavesTheFileAsItWas) {
  ASSERT_OK(Append(0, "abc").status());
  EXPECT_THAT(Append(4, "x").status(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                                HasSubstr("holds 3 bytes")));
  EXPECT_EQ(Read(0, 100), "abc");
}

TEST_F(ChunkFileTest, DamagedChunkIsNotWritten) {
  ASSERT_OK(Append(0, "abc").status());
  EXPECT_THAT(AppendChunk(path_, 3, "def", Crc("deF")).status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("crc32c")));
  EXPECT_EQ(Read(0, 100), "abc");
}

TEST_F(ChunkFileTest, ReadIsCappedAtTheChunkLimit) {
  const std::string big(kMaxChunkBytes + 10, 'y');
  ASSERT_OK(Append(0, big.substr(0, kMaxChunkBytes)).status());
  ASSERT_OK(Append(kMaxChunkBytes, big.substr(kMaxChunkBytes)).status());
  EXPECT_EQ(Read(0, kMaxChunkBytes * 2).size(), kMaxChunkBytes);
}

}  // namespace
}  // namespace rdf::initcopy
