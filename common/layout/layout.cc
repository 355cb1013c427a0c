#include "common/layout/layout.h"

#include "absl/strings/str_cat.h"
#include "common/base/file_system.h"

namespace rdf::layout {
namespace {
// absl::StrCat of this Abseil does not take std::string_view.
std::string Cat(std::string_view a, std::string_view b) { return std::string(a).append(b); }
}  // namespace

std::string VolumesDir(std::string_view data_dir) { return JoinPath(data_dir, "volumes"); }
std::string AuditDir(std::string_view data_dir) { return JoinPath(data_dir, "audit"); }
std::string ImageTrailDir(std::string_view data_dir) { return JoinPath(data_dir, "imagetrails"); }
std::string TakeoverDir(std::string_view data_dir) { return JoinPath(data_dir, "takeover"); }
std::string EventDir(std::string_view data_dir) { return JoinPath(data_dir, "events"); }
std::string ExceptionDir(std::string_view data_dir) { return JoinPath(data_dir, "exceptions"); }
std::string LockDir(std::string_view data_dir) { return JoinPath(data_dir, "locks"); }
std::string StatusDir(std::string_view data_dir) { return JoinPath(data_dir, "status"); }
std::string InitialCopyDir(std::string_view data_dir) { return JoinPath(data_dir, "initialize"); }

std::string VolumeDirName(std::string_view volume) {
  if (!volume.empty() && volume.front() == '$') volume.remove_prefix(1);
  return std::string(volume);
}
std::string VolumeDir(std::string_view data_dir, std::string_view volume) {
  return JoinPath(VolumesDir(data_dir), VolumeDirName(volume));
}

std::string VolumeDataFile(std::string_view volume_dir) { return JoinPath(volume_dir, "data.mdb"); }
std::string VolumeGateFile(std::string_view volume_dir) { return JoinPath(volume_dir, "gate.lock"); }
std::string CheckpointFile(std::string_view volume_dir) { return JoinPath(volume_dir, "checkpoint"); }
std::string CheckpointCopyFile(std::string_view volume_dir, uint32_t slot) {
  return JoinPath(volume_dir, absl::StrCat("checkpoint.mdb.", slot));
}

std::string PinFile(std::string_view audit_dir) { return JoinPath(audit_dir, "pin"); }
std::string PinReleasedFile(std::string_view audit_dir) {
  return JoinPath(audit_dir, "pin.released");
}

std::string SavePointShmFile(std::string_view image_trail_dir) {
  return JoinPath(image_trail_dir, "savepoint.shm");
}
std::string TrailEndFile(std::string_view trail_dir, std::string_view trail) {
  return JoinPath(trail_dir, Cat(trail, ".end"));
}

std::string StatusJsonFile(std::string_view status_dir, std::string_view process) {
  return JoinPath(status_dir, Cat(process, ".json"));
}
std::string StatusBinaryFile(std::string_view status_dir, std::string_view process) {
  return JoinPath(status_dir, Cat(process, ".status"));
}

std::string LockFile(std::string_view lock_dir, std::string_view name) {
  return JoinPath(lock_dir, Cat(name, ".lock"));
}

std::string ExceptionLogFile(std::string_view exception_dir, std::string_view volume) {
  return JoinPath(exception_dir, Cat(VolumeDirName(volume), kExceptionLogSuffix));
}

std::string TakeoverEpochFile(std::string_view takeover_dir) {
  return JoinPath(takeover_dir, "epoch");
}
std::string TakeoverReportFile(std::string_view takeover_dir, std::string_view ext) {
  return JoinPath(takeover_dir, Cat("report.", ext));
}
std::string TakeoverVolumeFile(std::string_view takeover_dir, std::string_view volume) {
  return JoinPath(takeover_dir, Cat(VolumeDirName(volume), ".json"));
}

std::string InitialCopyStateFile(std::string_view dir) { return JoinPath(dir, "state"); }
std::string InitialCopyJsonFile(std::string_view dir) { return JoinPath(dir, "state.json"); }
std::string InitialCopyInProgressFile(std::string_view dir) { return JoinPath(dir, "in_progress"); }
std::string InitialCopyStagingDir(std::string_view dir) { return JoinPath(dir, "staging"); }
std::string InitialCopyOutgoingDir(std::string_view dir) { return JoinPath(dir, "outgoing"); }

}  // namespace rdf::layout
