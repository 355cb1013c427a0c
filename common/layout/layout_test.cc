#include "common/layout/layout.h"

#include "gtest/gtest.h"

namespace rdf::layout {
namespace {

// The tree as docs/architecture.md draws it: a rename here is a format
// change (files of older versions would no longer be found).
TEST(LayoutTest, TheDataDirectoryTree) {
  const std::string d = "/srv/rdf";
  EXPECT_EQ(VolumeDir(d, "$DATA01"), "/srv/rdf/volumes/DATA01");
  EXPECT_EQ(VolumeDir(d, "DATA01"), "/srv/rdf/volumes/DATA01");
  EXPECT_EQ(VolumeDataFile(VolumeDir(d, "$A")), "/srv/rdf/volumes/A/data.mdb");
  EXPECT_EQ(VolumeGateFile("/v"), "/v/gate.lock");
  EXPECT_EQ(CheckpointFile("/v"), "/v/checkpoint");
  EXPECT_EQ(CheckpointCopyFile("/v", 1), "/v/checkpoint.mdb.1");
  EXPECT_EQ(PinFile(AuditDir(d)), "/srv/rdf/audit/pin");
  EXPECT_EQ(PinReleasedFile(AuditDir(d)), "/srv/rdf/audit/pin.released");
  EXPECT_EQ(SavePointShmFile(ImageTrailDir(d)), "/srv/rdf/imagetrails/savepoint.shm");
  EXPECT_EQ(TrailEndFile("/t", "MIT"), "/t/MIT.end");
  EXPECT_EQ(StatusJsonFile(StatusDir(d), "receiver"), "/srv/rdf/status/receiver.json");
  EXPECT_EQ(StatusBinaryFile(StatusDir(d), "receiver"), "/srv/rdf/status/receiver.status");
  EXPECT_EQ(LockFile(LockDir(d), "purger"), "/srv/rdf/locks/purger.lock");
  EXPECT_EQ(ExceptionLogFile(ExceptionDir(d), "$DATA02"), "/srv/rdf/exceptions/DATA02.jsonl");
  EXPECT_EQ(TakeoverEpochFile(TakeoverDir(d)), "/srv/rdf/takeover/epoch");
  EXPECT_EQ(TakeoverReportFile("/k", "json"), "/k/report.json");
  EXPECT_EQ(TakeoverVolumeFile("/k", "$DATA03"), "/k/DATA03.json");
  EXPECT_EQ(EventDir(d), "/srv/rdf/events");
  const std::string i = InitialCopyDir(d);
  EXPECT_EQ(i, "/srv/rdf/initialize");
  EXPECT_EQ(InitialCopyStateFile(i), "/srv/rdf/initialize/state");
  EXPECT_EQ(InitialCopyJsonFile(i), "/srv/rdf/initialize/state.json");
  EXPECT_EQ(InitialCopyInProgressFile(i), "/srv/rdf/initialize/in_progress");
  EXPECT_EQ(InitialCopyStagingDir(i), "/srv/rdf/initialize/staging");
  EXPECT_EQ(InitialCopyOutgoingDir(i), "/srv/rdf/initialize/outgoing");
}

}  // namespace
}  // namespace rdf::layout
