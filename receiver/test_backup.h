// Test-only: the backup node the receiver's unit tests start from.
#ifndef RDF_RECEIVER_TEST_BACKUP_H_
#define RDF_RECEIVER_TEST_BACKUP_H_

#include <filesystem>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/base/status_macros.h"
#include "common/config/config.h"
#include "common/testing/temp_dir.h"
#include "common/testing/test_config.h"

namespace rdf::receiver {

struct TestBackup {
  std::string dir;  // the test's folder (::rdf::testing::RemoveTestDir at the end)
  std::unique_ptr<config::Config> cfg;
  const proto::NodeConfig* node = nullptr;  // "backup", in *cfg
};

// A two-node system with volumes $DATA01 and $DATA02 and 64 KiB image
// segments in a fresh folder for `test`, and the backup's image-trail folder
// made (its shared end and save point files are real mapped files).
inline absl::StatusOr<TestBackup> MakeTestBackup(const std::string& test) {
  TestBackup b;
  b.dir = ::rdf::testing::MakeTestDir(test);
  RDF_ASSIGN_OR_RETURN(config::Config cfg, ::rdf::testing::TwoNodeConfig(b.dir, R"(
    volumes { name: "$DATA01" }
    volumes { name: "$DATA02" }
    trail { image_segment_bytes: 65536 }
  )"));
  b.cfg = std::make_unique<config::Config>(std::move(cfg));
  b.node = b.cfg->FindNode("backup");
  std::filesystem::create_directories(config::ImageTrailDir(*b.node));
  return b;
}

}  // namespace rdf::receiver

#endif  // RDF_RECEIVER_TEST_BACKUP_H_
