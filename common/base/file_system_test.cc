#include "common/base/file_system.h"

#include <stdlib.h>

#include <memory>
#include <string>

#include "common/testing/mem_file_system.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdf {
namespace {

using ::rdf::testing::StatusIs;

// StatusOr<T> is OK and its value matches.
MATCHER_P(IsOkAndHolds, m, "") {
  if (!arg.ok()) {
    *result_listener << "status is " << arg.status().ToString();
    return false;
  }
  return ::testing::ExplainMatchResult(m, *arg, result_listener);
}
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// A fresh directory under TEST_TMPDIR (or /tmp), removed afterwards.
class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TEST_TMPDIR");
    std::string tmpl = JoinPath(base ? base : "/tmp", "rdf_fs_test.XXXXXX");
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { system(("rm -rf '" + path_ + "'").c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The behaviour both file systems must share, run against each.
class FileSystemContract : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (GetParam()) {
      fs_ = FileSystem::Default();
      dir_ = JoinPath(tmp_.path(), "d");
    } else {
      fs_ = &mem_;
      dir_ = "/mem/d";
    }
    ASSERT_OK(fs_->CreateDirs(dir_));
  }
  std::string Path(const std::string& name) { return JoinPath(dir_, name); }

  absl::Status Write(const std::string& name, uint64_t offset, std::string data) {
    auto f = fs_->OpenWritable(Path(name), true);
    if (!f.ok()) return f.status();
    return (*f)->Write(offset, data);
  }
  std::string Read(const std::string& name) {
    auto s = ReadFileToString(fs_, Path(name));
    return s.ok() ? *s : std::string(s.status().ToString());
  }

  TempDir tmp_;
  MemFileSystem mem_;
  FileSystem* fs_ = nullptr;
  std::string dir_;
};

TEST_P(FileSystemContract, WriteAtOffsetsThenRead) {
  ASSERT_OK(Write("f", 0, "hello"));
  ASSERT_OK(Write("f", 3, "LOWORLD"));
  EXPECT_EQ(Read("f"), "helLOWORLD");
}

TEST_P(FileSystemContract, WritePastEndLeavesZeroGap) {
  ASSERT_OK(Write("f", 4, "x"));
  EXPECT_EQ(Read("f"), std::string("\0\0\0\0x", 5));
}

TEST_P(FileSystemContract, AllocateGrowsWithZerosAndTruncateCuts) {
  ASSERT_OK_AND_ASSIGN(auto f, fs_->OpenWritable(Path("f"), true));
  ASSERT_OK(f->Write(0, "abc"));
  ASSERT_OK(f->Allocate(4096));
  EXPECT_THAT(fs_->FileSize(Path("f")), IsOkAndHolds(::testing::AnyOf(4096u, 3u)));
  ASSERT_OK(f->Truncate(2));
  ASSERT_OK(f->Close());
  EXPECT_EQ(Read("f"), "ab");
}

TEST_P(FileSystemContract, ReadReturnsShortCountAtEnd) {
  ASSERT_OK(Write("f", 0, "abcdef"));
  ASSERT_OK_AND_ASSIGN(auto r, fs_->OpenReadable(Path("f")));
  char buf[16];
  EXPECT_THAT(r->Read(4, sizeof(buf), buf), IsOkAndHolds(2u));
  EXPECT_THAT(r->Read(10, sizeof(buf), buf), IsOkAndHolds(0u));
  EXPECT_THAT(r->Size(), IsOkAndHolds(6u));
}

TEST_P(FileSystemContract, MissingFileIsNotFoundNamingPath) {
  EXPECT_THAT(fs_->OpenReadable(Path("nope")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope")));
  EXPECT_THAT(fs_->OpenWritable(Path("nope"), false),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope")));
  EXPECT_THAT(fs_->Remove(Path("nope")), StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope")));
  EXPECT_FALSE(fs_->Exists(Path("nope")));
}

TEST_P(FileSystemContract, ListDirIsSortedNames) {
  ASSERT_OK(Write("b", 0, "1"));
  ASSERT_OK(Write("a", 0, "1"));
  ASSERT_OK(fs_->CreateDirs(Path("sub/deeper")));
  EXPECT_THAT(fs_->ListDir(dir_), IsOkAndHolds(ElementsAre("a", "b", "sub")));
  EXPECT_THAT(fs_->ListDir(Path("sub/deeper")), IsOkAndHolds(IsEmpty()));
}

TEST_P(FileSystemContract, RenameReplacesTarget) {
  ASSERT_OK(Write("a", 0, "new"));
  ASSERT_OK(Write("b", 0, "old contents"));
  ASSERT_OK(fs_->Rename(Path("a"), Path("b")));
  EXPECT_FALSE(fs_->Exists(Path("a")));
  EXPECT_EQ(Read("b"), "new");
}

TEST_P(FileSystemContract, WriteFileAtomicallyReplacesAndLeavesNoTemp) {
  ASSERT_OK(WriteFileAtomically(fs_, Path("p"), "first, longer"));
  ASSERT_OK(WriteFileAtomically(fs_, Path("p"), "second"));
  EXPECT_EQ(Read("p"), "second");
  EXPECT_THAT(fs_->ListDir(dir_), IsOkAndHolds(ElementsAre("p")));
}

INSTANTIATE_TEST_SUITE_P(PosixAndMem, FileSystemContract, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Posix" : "Mem"; });

TEST(PosixFileSystem, CreateDirsOverAFileFails) {
  TempDir tmp;
  FileSystem* fs = FileSystem::Default();
  ASSERT_OK(WriteFileAtomically(fs, JoinPath(tmp.path(), "f"), "x"));
  EXPECT_THAT(fs->CreateDirs(JoinPath(tmp.path(), "f/g")),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("/f")));
}

// Files over a step are freed a step at a time (see RemoveGradually): the
// file leaves its name at once, nothing is left behind, and a `.removing`
// file a crash left in the folder goes with the next such removal.
TEST(PosixFileSystem, LargeFileIsRemovedAStepAtATimeLeavingNothing) {
  TempDir tmp;
  FileSystem* fs = FileSystem::Default();
  const std::string big = JoinPath(tmp.path(), "seg.000001");
  const std::string stale = JoinPath(tmp.path(), "seg.000000.removing");
  const std::string small = JoinPath(tmp.path(), "small");
  for (const auto& [path, bytes] : {std::pair{big, size_t{3} << 20 | 12345},
                                    std::pair{stale, size_t{2} << 20}, std::pair{small, size_t{10}}}) {
    ASSERT_OK_AND_ASSIGN(auto f, fs->OpenWritable(path, true));
    ASSERT_OK(f->Write(0, std::string(bytes, 'x')));
    ASSERT_OK(f->Close());
  }
  ASSERT_OK(fs->Remove(big));
  ASSERT_OK(fs->Remove(small));
  EXPECT_FALSE(fs->Exists(big));
  EXPECT_THAT(fs->ListDir(tmp.path()), IsOkAndHolds(IsEmpty()));
  EXPECT_THAT(fs->Remove(big), StatusIs(absl::StatusCode::kNotFound, HasSubstr("seg.000001")));
}

TEST(PathHelpers, JoinAndDirName) {
  EXPECT_EQ(JoinPath("a", "b"), "a/b");
  EXPECT_EQ(JoinPath("a/", "b"), "a/b");
  EXPECT_EQ(JoinPath("", "b"), "b");
  EXPECT_EQ(DirName("/x/y/z"), "/x/y");
  EXPECT_EQ(DirName("/x//y/"), "/x");
  EXPECT_EQ(DirName("/x"), "/");
  EXPECT_EQ(DirName("x"), ".");
}

// --- MemFileSystem: power loss ---------------------------------------------

class MemFileSystemTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(fs_.CreateDirs("/d")); }
  std::unique_ptr<WritableFile> Open(const std::string& path) {
    auto f = fs_.OpenWritable(path, true);
    EXPECT_OK(f.status());
    return f.ok() ? std::move(*f) : nullptr;
  }
  std::string Contents(const std::string& path) {
    auto c = fs_.Contents(path);
    return c.ok() ? *c : "MISSING";
  }
  MemFileSystem fs_;
};

TEST_F(MemFileSystemTest, DropUnsyncedDataKeepsOnlySyncedBytes) {
  auto f = Open("/d/f");
  ASSERT_OK(fs_.SyncDir("/d"));
  ASSERT_OK(f->Write(0, "synced"));
  ASSERT_OK(f->Sync());
  ASSERT_OK(f->Write(6, "-lost"));
  fs_.DropUnsyncedData();
  EXPECT_EQ(Contents("/d/f"), "synced");
}

TEST_F(MemFileSystemTest, FileWithoutDirSyncVanishesOnPowerLoss) {
  auto f = Open("/d/f");
  ASSERT_OK(f->Write(0, "data"));
  ASSERT_OK(f->Sync());
  fs_.DropUnsyncedData();
  EXPECT_FALSE(fs_.Exists("/d/f"));
}

TEST_F(MemFileSystemTest, UnsyncedRenameIsUndoneByPowerLoss) {
  ASSERT_OK(fs_.SetContents("/d/a", "A"));
  ASSERT_OK(fs_.Rename("/d/a", "/d/b"));
  fs_.DropUnsyncedData();
  EXPECT_EQ(Contents("/d/a"), "A");
  EXPECT_FALSE(fs_.Exists("/d/b"));
}

TEST_F(MemFileSystemTest, UnsyncedRemoveIsUndoneByPowerLoss) {
  ASSERT_OK(fs_.SetContents("/d/a", "A"));
  ASSERT_OK(fs_.Remove("/d/a"));
  fs_.DropUnsyncedData();
  EXPECT_EQ(Contents("/d/a"), "A");
}

TEST_F(MemFileSystemTest, WriteFileAtomicallySurvivesPowerLoss) {
  ASSERT_OK(WriteFileAtomically(&fs_, "/d/p", "v1"));
  ASSERT_OK(WriteFileAtomically(&fs_, "/d/p", "v2"));
  fs_.DropUnsyncedData();
  EXPECT_EQ(Contents("/d/p"), "v2");
}

TEST_F(MemFileSystemTest, OpenInMissingDirectoryIsNotFound) {
  EXPECT_THAT(fs_.OpenWritable("/nodir/f", true),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nodir/f")));
}

// --- FaultInjectingFileSystem ----------------------------------------------

class FaultInjectingTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(mem_.CreateDirs("/d")); }
  MemFileSystem mem_;
  FaultInjectingFileSystem fs_{&mem_};
};

TEST_F(FaultInjectingTest, ForwardsWhenNoFaultArmed) {
  ASSERT_OK(WriteFileAtomically(&fs_, "/d/f", "ok"));
  EXPECT_THAT(ReadFileToString(&fs_, "/d/f"), IsOkAndHolds(std::string("ok")));
}

TEST_F(FaultInjectingTest, WriteErrorFailsWritesAndAllocateUntilCleared) {
  ASSERT_OK_AND_ASSIGN(auto f, fs_.OpenWritable("/d/f", true));
  fs_.SetWriteError(absl::ResourceExhaustedError("ENOSPC"));
  EXPECT_THAT(f->Write(0, "x"), StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("/d/f")));
  EXPECT_THAT(f->Allocate(100), StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("ENOSPC")));
  fs_.SetWriteError(absl::OkStatus());
  EXPECT_OK(f->Write(0, "x"));
}

TEST_F(FaultInjectingTest, SyncErrorFailsFileAndDirectorySync) {
  ASSERT_OK_AND_ASSIGN(auto f, fs_.OpenWritable("/d/f", true));
  fs_.SetSyncError(absl::InternalError("EIO"));
  EXPECT_THAT(f->Sync(), StatusIs(absl::StatusCode::kInternal, HasSubstr("EIO")));
  EXPECT_THAT(fs_.SyncDir("/d"), StatusIs(absl::StatusCode::kInternal, HasSubstr("EIO")));
  EXPECT_THAT(WriteFileAtomically(&fs_, "/d/p", "v"), StatusIs(absl::StatusCode::kInternal, HasSubstr("EIO")));
}

TEST_F(FaultInjectingTest, ReadErrorFailsReads) {
  ASSERT_OK(mem_.SetContents("/d/f", "abc"));
  fs_.SetReadError(absl::InternalError("EIO"));
  EXPECT_THAT(ReadFileToString(&fs_, "/d/f"), StatusIs(absl::StatusCode::kInternal, HasSubstr("EIO")));
}

TEST_F(FaultInjectingTest, PathFilterLimitsFaultsToMatchingPaths) {
  fs_.SetPathFilter("victim");
  fs_.SetWriteError(absl::ResourceExhaustedError("ENOSPC"));
  EXPECT_OK(WriteFileAtomically(&fs_, "/d/bystander", "ok"));
  EXPECT_THAT(WriteFileAtomically(&fs_, "/d/victim", "no"),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("victim")));
  EXPECT_FALSE(mem_.Exists("/d/victim.tmp"));
}

}  // namespace
}  // namespace rdf
