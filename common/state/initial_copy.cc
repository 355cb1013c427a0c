#include "common/state/initial_copy.h"

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/config/config.h"
#include "common/json/proto.h"
#include "common/layout/layout.h"

namespace rdf {

std::string InitialCopyDir(const proto::NodeConfig& node) {
  return layout::InitialCopyDir(node.data_dir());
}
std::string InitialCopyStatePath(const proto::NodeConfig& node) {
  return layout::InitialCopyStateFile(InitialCopyDir(node));
}
std::string InitialCopyJsonPath(const proto::NodeConfig& node) {
  return layout::InitialCopyJsonFile(InitialCopyDir(node));
}
std::string InitialCopyInProgressPath(const proto::NodeConfig& node) {
  return layout::InitialCopyInProgressFile(InitialCopyDir(node));
}
std::string InitialCopyStagingDir(const proto::NodeConfig& node) {
  return layout::InitialCopyStagingDir(InitialCopyDir(node));
}
std::string InitialCopyOutgoingDir(const proto::NodeConfig& node) {
  return layout::InitialCopyOutgoingDir(InitialCopyDir(node));
}

absl::StatusOr<std::optional<proto::InitialCopy>> ReadInitialCopy(
    FileSystem* fs, const proto::NodeConfig& node) {
  const std::string path = InitialCopyStatePath(node);
  if (!fs->Exists(path)) return std::nullopt;
  RDF_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(fs, path));
  proto::InitialCopy state;
  if (!state.ParseFromString(bytes)) {
    return absl::DataLossError(absl::StrCat(path, ": not an initial-copy state"));
  }
  if (state.version() != kInitialCopyVersion) {
    return absl::DataLossError(absl::StrCat(path, ": initial-copy state version ",
                                            state.version(), " is not known to this build (",
                                            kInitialCopyVersion, ")"));
  }
  return state;
}

absl::Status WriteInitialCopy(FileSystem* fs, const proto::NodeConfig& node,
                              const proto::InitialCopy& state) {
  RDF_RETURN_IF_ERROR(fs->CreateDirs(InitialCopyDir(node)));
  RDF_RETURN_IF_ERROR(
      WriteFileAtomically(fs, InitialCopyJsonPath(node), json::MessageToJson(state) + "\n"));
  return WriteFileAtomically(fs, InitialCopyStatePath(node), state.SerializeAsString());
}

absl::Status MarkInitialCopyInProgress(FileSystem* fs, const proto::NodeConfig& node,
                                       const std::string& text) {
  RDF_RETURN_IF_ERROR(fs->CreateDirs(InitialCopyDir(node)));
  return WriteFileAtomically(fs, InitialCopyInProgressPath(node), text);
}

absl::Status ClearInitialCopyInProgress(FileSystem* fs, const proto::NodeConfig& node) {
  const std::string path = InitialCopyInProgressPath(node);
  if (!fs->Exists(path)) return absl::OkStatus();
  RDF_RETURN_IF_ERROR(fs->Remove(path));
  return fs->SyncDir(InitialCopyDir(node));
}

absl::Status CheckNoInitialCopyInProgress(FileSystem* fs, const proto::NodeConfig& node,
                                          const std::string& process) {
  const std::string path = InitialCopyInProgressPath(node);
  if (!fs->Exists(path)) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "an initial copy (rdfcom initialize) is running on node '", node.name(),
      "' or was interrupted (", path, " exists); the ", process,
      " starts once `rdfcom initialize` has completed"));
}

SnapshotFilter::SnapshotFilter(const proto::VolumeCopy& v)
    : snapshot_asn_(v.snapshot_asn()), open_(v.open_txids().begin(), v.open_txids().end()) {}

absl::StatusOr<SnapshotFilter> LoadSnapshotFilter(FileSystem* fs,
                                                  const proto::NodeConfig& node,
                                                  const std::string& volume) {
  RDF_ASSIGN_OR_RETURN(std::optional<proto::InitialCopy> state, ReadInitialCopy(fs, node));
  if (!state.has_value()) return SnapshotFilter();
  for (const proto::VolumeCopy& v : state->volumes()) {
    if (v.volume() == volume) return SnapshotFilter(v);
  }
  return SnapshotFilter();
}

}  // namespace rdf
