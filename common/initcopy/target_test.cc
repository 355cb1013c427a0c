#include "common/initcopy/target.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "common/base/file_system.h"
#include "common/config/config.h"
#include "common/process/lock.h"
#include "common/state/initial_copy.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdf::initcopy {
namespace {

using ::rdf::testing::StatusIs;
using ::testing::HasSubstr;

constexpr char kConfig[] = R"cfg(system: "test"
nodes { name: "p" role: PRIMARY host: "127.0.0.1" data_dir: "p" key_file: "keys/p.key" }
nodes { name: "b" role: BACKUP host: "127.0.0.1" audit_port: 17999 data_dir: "b"
        key_file: "keys/b.key" }
volumes { name: "$DATA01" }
)cfg";

class TargetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::rdf::testing::MakeTestDir("initialize_target_test");
    absl::StatusOr<config::Config> c = config::Parse(kConfig, dir_ + "/rdf.textproto");
    ASSERT_TRUE(c.ok()) << c.status();
    cfg_ = *std::move(c);
    backup_ = cfg_.FindNode("b");
    // The backup's volume as it is before initialize.
    std::filesystem::create_directories(config::VolumeDir(*backup_, "$DATA01"));
    std::ofstream(OldVolumeFile()) << "old";
  }
  void TearDown() override { ::rdf::testing::RemoveTestDir(dir_); }
  std::string OldVolumeFile() const {
    return config::VolumeDir(*backup_, "$DATA01") + "/old-data";
  }
  // A plan whose copies are empty volumes (nothing staged: 0 bytes each).
  proto::CopyPlan EmptyPlan() const {
    proto::CopyPlan plan;
    plan.set_start_asn(1);
    plan.add_volumes()->set_volume("$DATA01");
    return plan;
  }
  std::string dir_;
  config::Config cfg_;
  const proto::NodeConfig* backup_ = nullptr;
};

TEST_F(TargetTest, CommitInstallsWhenTheBackupIsStopped) {
  Target t(cfg_, *backup_, FileSystem::Default());
  ASSERT_OK(t.Begin("test"));
  ASSERT_OK(t.Commit(EmptyPlan(), proto::InitialCopy()).status());
  EXPECT_FALSE(std::filesystem::exists(OldVolumeFile()));  // replaced by the copy
}

TEST_F(TargetTest, CommitRefusesToInstallWhileABackupProcessStartedAfterBegin) {
  Target t(cfg_, *backup_, FileSystem::Default());
  ASSERT_OK(t.Begin("test"));
  // A purger starts during the copy (restarted by a monitor, or by hand).
  absl::StatusOr<std::unique_ptr<ProcessLock>> purger =
      ProcessLock::Acquire(config::LockDir(*backup_), "purger");
  ASSERT_TRUE(purger.ok()) << purger.status();
  EXPECT_THAT(t.Commit(EmptyPlan(), proto::InitialCopy()).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("purger runs")));
  EXPECT_FALSE(t.installing());
  EXPECT_TRUE(std::filesystem::exists(OldVolumeFile()));  // nothing replaced
  ASSERT_OK(t.Abort());
  EXPECT_FALSE(std::filesystem::exists(InitialCopyInProgressPath(*backup_)));
}

}  // namespace
}  // namespace rdf::initcopy
