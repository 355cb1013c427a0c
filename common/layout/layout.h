// Every path inside a node's data directory, spelled once (as leveldb's
// db/filename.h). docs/architecture.md, "A node's data directory", draws the
// tree. Functions take the folder they build in, so that every library,
// however low, can use them; config.h adds the NodeConfig shorthands
// (config::VolumeDir(node, volume) and the like). Trail segment names
// (MAT.0000000001) belong to the trail format (common/trail/format.h).
#ifndef RDF_COMMON_LAYOUT_LAYOUT_H_
#define RDF_COMMON_LAYOUT_LAYOUT_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace rdf::layout {

// Folders of <data_dir>.
std::string VolumesDir(std::string_view data_dir);       // volumes/
std::string AuditDir(std::string_view data_dir);         // audit/: the MAT (primary)
std::string ImageTrailDir(std::string_view data_dir);    // imagetrails/: MIT and volume trails
std::string TakeoverDir(std::string_view data_dir);      // takeover/: epoch, report
std::string EventDir(std::string_view data_dir);         // events/: per-process event trails
std::string ExceptionDir(std::string_view data_dir);     // exceptions/: <VOLUME>.jsonl
std::string LockDir(std::string_view data_dir);          // locks/: <process>.lock
std::string StatusDir(std::string_view data_dir);        // status/: <process>.json, .status
std::string InitialCopyDir(std::string_view data_dir);   // initialize/

// "$DATA01" -> "DATA01": a volume's name without its leading '$'.
std::string VolumeDirName(std::string_view volume);
// volumes/<VolumeDirName>: a volume's LMDB environment and checkpoints.
std::string VolumeDir(std::string_view data_dir, std::string_view volume);

// In a volume's folder.
std::string VolumeDataFile(std::string_view volume_dir);      // data.mdb (LMDB)
std::string VolumeGateFile(std::string_view volume_dir);      // gate.lock (lmdb::VolumeGate)
std::string CheckpointFile(std::string_view volume_dir);      // checkpoint (two record slots)
std::string CheckpointCopyFile(std::string_view volume_dir, uint32_t slot);  // checkpoint.mdb.<slot>

// In the audit folder: the extractor's pin, and tmf's note that it let go.
std::string PinFile(std::string_view audit_dir);              // pin
std::string PinReleasedFile(std::string_view audit_dir);      // pin.released

// In a trail's folder: the published save point (image trails) and a
// trail's durable end, shared between processes.
std::string SavePointShmFile(std::string_view image_trail_dir);            // savepoint.shm
std::string TrailEndFile(std::string_view trail_dir, std::string_view trail);  // <trail>.end

// In the status folder.
std::string StatusJsonFile(std::string_view status_dir, std::string_view process);    // .json
std::string StatusBinaryFile(std::string_view status_dir, std::string_view process);  // .status

// In the lock folder.
std::string LockFile(std::string_view lock_dir, std::string_view name);  // <name>.lock

// In the exceptions folder: an updater's exception log.
inline constexpr char kExceptionLogSuffix[] = ".jsonl";
std::string ExceptionLogFile(std::string_view exception_dir, std::string_view volume);  // <V>.jsonl

// In the takeover folder.
std::string TakeoverEpochFile(std::string_view takeover_dir);                    // epoch
std::string TakeoverReportFile(std::string_view takeover_dir, std::string_view ext);  // report.<ext>
std::string TakeoverVolumeFile(std::string_view takeover_dir, std::string_view volume);  // <V>.json

// In the initial-copy folder.
std::string InitialCopyStateFile(std::string_view dir);       // state (binary record)
std::string InitialCopyJsonFile(std::string_view dir);        // state.json
std::string InitialCopyInProgressFile(std::string_view dir);  // in_progress
std::string InitialCopyStagingDir(std::string_view dir);      // staging/
std::string InitialCopyOutgoingDir(std::string_view dir);     // outgoing/

}  // namespace rdf::layout

#endif  // RDF_COMMON_LAYOUT_LAYOUT_H_
