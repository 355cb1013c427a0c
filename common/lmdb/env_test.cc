#include "common/lmdb/env.h"

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/base/file_system.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdf::lmdb {
namespace {

using ::rdf::testing::StatusIs;
using ::testing::HasSubstr;

constexpr uint64_t kMiB = 1 << 20;
const std::string kValue(1000, 'v');

class LmdbEnvTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = JoinPath(rdf::testing::MakeTestDir("lmdb_env_test"), "vol"); }
  void TearDown() override { rdf::testing::RemoveTestDir(std::filesystem::path(dir_).parent_path()); }

  std::unique_ptr<Env> Open(uint64_t map_bytes) {
    auto env = Env::Open(dir_, map_bytes, 8);
    EXPECT_OK(env.status());
    return env.ok() ? *std::move(env) : nullptr;
  }
  // Keys k<from>..k<to - 1> of 1000 bytes, 100 per commit; a full map is
  // grown (doubled) and the commit tried again, as the writers do.
  // Returns the number of growths.
  int Write(Env* env, int from, int to) {
    MDB_dbi dbi = *env->OpenDb("F", true);
    int grown = 0;
    for (int i = from; i < to;) {
      absl::Status s = Commit100(env, dbi, i, std::min(to, i + 100));
      if (IsMapFull(s)) {
        EXPECT_OK(env->Grow());
        ++grown;
        continue;
      }
      EXPECT_OK(s);
      if (!s.ok()) return grown;
      i += 100;
    }
    return grown;
  }
  absl::Status Commit100(Env* env, MDB_dbi dbi, int from, int to) {
    auto txn = WriteTxn::Begin(env);
    if (!txn.ok()) return txn.status();
    for (int k = from; k < to; ++k) {
      absl::Status s = (*txn)->Put(dbi, absl::StrCat("k", k), kValue);
      if (!s.ok()) return s;
    }
    return (*txn)->Commit();
  }
  static uint64_t UsedBytes(Env* env) {
    MDB_envinfo info;
    mdb_env_info(env->env(), &info);
    MDB_stat st;
    mdb_env_stat(env->env(), &st);
    return (info.me_last_pgno + 1) * st.ms_psize;
  }
  // Another process (LMDB must not open one environment twice in a
  // process) opens the volume with a `map_bytes` map and writes keys
  // k<from>..k<to - 1>; true when it grew the map and wrote them all.
  bool WriteInChild(uint64_t map_bytes, int from, int to) {
    pid_t pid = fork();
    if (pid == 0) {
      auto env = Env::Open(dir_, map_bytes, 8);
      int grown = env.ok() ? Write(env->get(), from, to) : 0;
      bool ok = env.ok() && grown > 0 && Read(env->get(), to - 1).ok();
      _exit(ok ? 0 : 1);
    }
    int status = 0;
    return pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
           WEXITSTATUS(status) == 0;
  }
  // The value of key k<k>, read in a fresh read transaction.
  absl::StatusOr<std::optional<std::string>> Read(Env* env, int k) {
    auto dbi = env->OpenDb("F", false);
    if (!dbi.ok()) return dbi.status();
    auto txn = ReadTxn::Begin(env);
    if (!txn.ok()) return txn.status();
    return (*txn)->Get(*dbi, absl::StrCat("k", k));
  }

  std::string dir_;
};

TEST_F(LmdbEnvTest, GrownMapIsKeptAcrossReopen) {
  auto env = Open(kMiB);
  ASSERT_GT(Write(env.get(), 0, 3000), 0);  // about 4 MiB of pages: grown to 8
  const uint64_t grown = env->map_bytes();
  ASSERT_GE(grown - UsedBytes(env.get()), 2 * kMiB);  // room for the next write
  env.reset();
  env = Open(kMiB);  // the configured size is still 1 MiB
  EXPECT_GE(env->map_bytes(), grown);
  // The next big write (about 1 MiB) fits in the kept map: no MDB_MAP_FULL
  // (a map of the pages in use, as LMDB makes it, would be full).
  MDB_dbi dbi = *env->OpenDb("F", true);
  for (int k = 3000; k < 4000; k += 100) ASSERT_OK(Commit100(env.get(), dbi, k, k + 100));
}

TEST_F(LmdbEnvTest, LargerConfiguredMapIsUsed) {
  Open(kMiB).reset();
  EXPECT_GE(Open(16 * kMiB)->map_bytes(), 16 * kMiB);
}

TEST_F(LmdbEnvTest, ReaderAdoptsMapGrownByAnotherProcess) {
  Write(Open(kMiB).get(), 0, 10);
  auto reader = Open(kMiB);  // the small map
  ASSERT_OK(Read(reader.get(), 9).status());
  ASSERT_TRUE(WriteInChild(kMiB, 10, 6000));
  // Without adopting the grown map this is MDB_MAP_RESIZED, for ever.
  ASSERT_OK_AND_ASSIGN(std::optional<std::string> v, Read(reader.get(), 5999));
  EXPECT_EQ(v, kValue);
  EXPECT_GE(reader->map_bytes(), 6 * kMiB);
}

TEST_F(LmdbEnvTest, ReadOnlyReaderAdoptsMapGrownByWriter) {
  Write(Open(kMiB).get(), 0, 10);
  ASSERT_OK_AND_ASSIGN(auto reader, Env::OpenReadOnly(dir_, 8));
  ASSERT_OK(Read(reader.get(), 9).status());
  ASSERT_TRUE(WriteInChild(kMiB, 10, 6000));
  ASSERT_OK_AND_ASSIGN(std::optional<std::string> v, Read(reader.get(), 5999));
  EXPECT_EQ(v, kValue);
}

TEST_F(LmdbEnvTest, ReadOnlyOpenOfMissingVolumeCreatesNothing) {
  EXPECT_THAT(Env::OpenReadOnly(dir_, 8).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no LMDB environment")));
  EXPECT_FALSE(std::filesystem::exists(dir_));
}

TEST_F(LmdbEnvTest, ReadOnlyEnvRefusesWrites) {
  Write(Open(kMiB).get(), 0, 10);
  ASSERT_OK_AND_ASSIGN(auto reader, Env::OpenReadOnly(dir_, 8));
  EXPECT_THAT(WriteTxn::Begin(reader.get()).status(),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("begin write transaction")));
}

}  // namespace
}  // namespace rdf::lmdb
