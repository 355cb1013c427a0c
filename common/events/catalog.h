// The EMS event numbers of the whole product, one constant per event, and a
// table of their default severities and short names (common/events/catalog.cc).
// docs/events.md gives each event's text, fields, cause, effect and recovery;
// event_log_test checks that every number here is in the table and the doc.
//
// Numbering: where NonStop RDF has an event with the same meaning, its number
// is reused (700, 724, 725, 726, 735, 737, 738, 739, 741, 760, 797, 834, 835,
// 837, 839, 852, 856, 861, 862, 868, 876). Events of our own are numbered
// 920-999 in blocks per process (RDF uses 900-903, 905, 908 and 918, which we
// avoid). A number, once shipped, is never reused for another meaning; a
// retired number stays listed in docs/events.md as retired.
//
// Conventions for callers of EventLog::Log:
//  - the text is the fixed short name below (the rate limiter keys on
//    number and text, so variable data goes into fields, never the text);
//  - the severity is the default below unless the doc says otherwise;
//  - field names are lower_snake_case; ASNs, byte counts and durations are
//    decimal strings (`asn`, `bytes`, `rtd_ms`, `retry_in_ms`).
#ifndef RDF_COMMON_EVENTS_CATALOG_H_
#define RDF_COMMON_EVENTS_CATALOG_H_

#include <cstdint>
#include <span>

#include "event.pb.h"

namespace rdf::events {

// --- Any process ---------------------------------------------------------
// A file-system error on a trail, context or data file (path, op, error).
inline constexpr uint32_t kFileSystemError = 700;
// Checksum or framing damage found in a trail; that reader stops there.
inline constexpr uint32_t kTrailDamaged = 990;
// A torn tail (a crash mid-write) was cut off when a trail writer opened.
inline constexpr uint32_t kTornTailRepaired = 991;
// At close, repeats that rate limiting dropped and no later event reported.
inline constexpr uint32_t kRepeatsSuppressed = 992;
// The process has opened its state and is working.
inline constexpr uint32_t kProcessReady = 993;
// The process is stopping in order (reason).
inline constexpr uint32_t kProcessStopping = 994;
// A stage's position has stood for monitor.stall_after_ms while work waits for
// it (process, for_ms, reason); once per episode (logged by the monitor).
inline constexpr uint32_t kStageStalled = 995;
// A stalled stage advances again, or no work waits for it any more (process,
// stalled_ms).
inline constexpr uint32_t kStageResumed = 996;

// --- monitor (each node) -------------------------------------------------
// The monitor started a process of its node's set (program, pid, attempt).
inline constexpr uint32_t kProcessStarted = 920;
// A supervised process exited unexpectedly; restart after a backoff.
inline constexpr uint32_t kProcessDied = 921;
// A process keeps dying; restarts continue at the longest backoff.
inline constexpr uint32_t kProcessCrashLoop = 922;
// A supervised process stopped on request.
inline constexpr uint32_t kProcessStopped = 923;
// The system state changed (from, to), e.g. NORMAL -> STOPPING.
inline constexpr uint32_t kStateChanged = 924;
// The other node's monitor cannot be reached.
inline constexpr uint32_t kPeerUnreachable = 925;
// The other node's monitor can be reached again.
inline constexpr uint32_t kPeerReachable = 926;
// The configured notify command failed or timed out.
inline constexpr uint32_t kNotifyFailed = 927;
// The monitor could not start a process (exec failed, bad arguments).
inline constexpr uint32_t kProcessStartFailed = 928;
// A process did not end within the grace after SIGTERM and SIGKILL of a stop
// (process, pid, waited_ms, reason); it is not restarted when it exits.
inline constexpr uint32_t kProcessNotStopped = 929;
// A running process has not published its status for monitor.hung_after_ms
// (process, pid, status_age_ms, restart_in_ms); once per episode.
inline constexpr uint32_t kProcessHung = 983;
// A hung process was killed (SIGKILL) to be restarted (process, pid,
// status_age_ms).
inline constexpr uint32_t kHungProcessKilled = 984;
// The control port refused a request for the caller's rights (command,
// caller, key, reason).
inline constexpr uint32_t kControlRequestRefused = 985;
// Drain complete: every updater stopped at the shutdown record (RDF 852).
inline constexpr uint32_t kDrainComplete = 852;

// --- tmf (the primary library, in the application's process) -------------
// Audit held for the extractor's pin reached 80% of audit_retention_bytes.
inline constexpr uint32_t kAuditRetentionWarning = 930;
// Audit retention bound reached: commits are refused (REFUSE_COMMITS).
inline constexpr uint32_t kAuditRetentionBoundReached = 931;
// Audit held for the pin is back under the warning level.
inline constexpr uint32_t kAuditRetentionRecovered = 932;
// Bound reached under RELEASE_PIN: the pin was dropped, the backup needs a
// new initial copy.
inline constexpr uint32_t kAuditPinReleased = 933;
// Recovery at open finished: committed audit replayed into the volumes.
inline constexpr uint32_t kRecoveryComplete = 934;
// A transaction's audit exceeded max_txn_bytes; the operation was refused.
inline constexpr uint32_t kTransactionTooLarge = 935;
// A promoted tmf starts transaction ids above every id seen (first_txid).
inline constexpr uint32_t kTxidFloorRaised = 936;
// A volume in copy mode went back to its checkpoint copy after a system crash.
inline constexpr uint32_t kTmfVolumeRolledBack = 937;
// (Lock timeouts and deadlocks are returned to the caller, not logged.)

// --- extractor (primary) ---------------------------------------------------
// Asking the receiver where to start (RDF 737).
inline constexpr uint32_t kEstablishingSynch = 737;
// The receiver answered; shipping from asn (RDF 738).
inline constexpr uint32_t kSynchEstablished = 738;
// An audit segment the extractor needs is gone (RDF 839).
inline constexpr uint32_t kAuditFileMissing = 839;
// RTD went over its warning threshold (extractor and updater, RDF 861).
inline constexpr uint32_t kRtdOverThreshold = 861;
// RTD came back under its warning threshold (RDF 862).
inline constexpr uint32_t kRtdUnderThreshold = 862;
// Cannot connect to the receiver; retrying with backoff.
inline constexpr uint32_t kConnectFailed = 940;
// The connection to the receiver was lost; unacknowledged batches are resent.
inline constexpr uint32_t kConnectionLost = 941;
// The CURVE handshake with the receiver failed.
inline constexpr uint32_t kAuthenticationFailed = 942;
// The receiver refused the extractor (reason: version, fenced, unknown).
inline constexpr uint32_t kRefusedByReceiver = 943;
// The extractor read a SHUTDOWN control record; it stops once acknowledged.
inline constexpr uint32_t kShutdownRecordRead = 944;

// --- receiver (backup) ------------------------------------------------------
// A batch out of sequence was refused with all later ones; resynch (RDF 741).
inline constexpr uint32_t kResynchronizing = 741;
// The save point (logged at start as the restart point, and at stop; RDF 876).
inline constexpr uint32_t kSavePoint = 876;
// A peer not configured (unknown CURVE key) was refused.
inline constexpr uint32_t kSenderRefused = 950;
// A message with an unsupported protocol version was refused.
inline constexpr uint32_t kBadProtocolVersion = 951;
// A message that does not decode or fails validation was refused.
inline constexpr uint32_t kMalformedMessage = 952;
// A message larger than max_message_bytes was refused.
inline constexpr uint32_t kOversizedMessage = 953;
// The image trail disk is full; the receiver stops acknowledging.
inline constexpr uint32_t kDiskFullStopped = 954;
// Space is available again; the receiver resumes.
inline constexpr uint32_t kDiskFullResumed = 955;
// Audit from the old primary refused after takeover (fencing epoch).
inline constexpr uint32_t kFencedAuditRefused = 956;
// An extractor connected and was admitted.
inline constexpr uint32_t kSenderConnected = 957;
// Nothing (not even a heartbeat) has arrived from the extractor for a while.
inline constexpr uint32_t kSenderSilent = 958;

// --- updater (backup, one per volume) -----------------------------------------
// Restarting at its restart point in the image trail (RDF 837).
inline constexpr uint32_t kRestartingAt = 837;
// A storage (LMDB) error; restarting from the restart point after a backoff
// (RDF 739).
inline constexpr uint32_t kStorageError = 739;
// The storage error went away; applying again.
inline constexpr uint32_t kStorageErrorCleared = 960;
// Insert of an existing key skipped (error 10), written to the exception log.
inline constexpr uint32_t kDuplicateKeySkipped = 961;
// Update or delete of a missing key skipped (error 11), exception log.
inline constexpr uint32_t kMissingKeySkipped = 962;
// Error 10/11 under policy STOP: the updater stopped.
inline constexpr uint32_t kUpdaterStoppedOnError = 963;
// Updating stopped (`rdfcom update stop`, drain, shutdown record).
inline constexpr uint32_t kUpdatingStopped = 964;
// Updating started or resumed.
inline constexpr uint32_t kUpdatingStarted = 965;
// A DDL record (file create or purge) was applied.
inline constexpr uint32_t kDdlApplied = 966;
// The volume's LMDB map was full and was grown.
inline constexpr uint32_t kVolumeMapGrown = 967;
// Takeover undo pass started (RDF 868).
inline constexpr uint32_t kUndoPass = 868;
// Takeover undo pass finished for this volume.
inline constexpr uint32_t kUndoPassComplete = 968;
// After a system crash the volume opened at its last checkpoint.
inline constexpr uint32_t kVolumeRolledBack = 969;

// --- takeover (backup) ------------------------------------------------------
// Takeover started; the fencing epoch is durable.
inline constexpr uint32_t kTakeoverStarted = 970;
// Transactions whose outcome never arrived were undone and are lost.
inline constexpr uint32_t kTransactionsLost = 971;
// An updater gave up its takeover REDO: no progress within
// updater.takeover_retry_ms, or a damaged image trail (finding 21).
inline constexpr uint32_t kTakeoverRedoFailed = 972;
// Takeover complete (RDF 724).
inline constexpr uint32_t kTakeoverComplete = 724;
// Takeover failed; it is restartable (RDF 725).
inline constexpr uint32_t kTakeoverFailed = 725;
// One updater failed during takeover (RDF 726).
inline constexpr uint32_t kTakeoverUpdaterFailed = 726;
// The last MAT position the receiver saved (RDF 735).
inline constexpr uint32_t kLastMatPosition = 735;

// --- purger (backup) ---------------------------------------------------------
// Purge pass started (RDF 856).
inline constexpr uint32_t kPurgePassStarted = 856;
// Image trail segment purged (RDF 760).
inline constexpr uint32_t kSegmentPurged = 760;
// Purge pass ended early (RDF 834).
inline constexpr uint32_t kPurgePassEndedEarly = 834;
// A segment could not be purged (RDF 797).
inline constexpr uint32_t kPurgeError = 797;
// Segments held because an open transaction's audit begins in them.
inline constexpr uint32_t kPurgeHeldByTransaction = 975;

// --- rdfcom -------------------------------------------------------------------
// An operator command, logged by rdfcom on the node it talked to (RDF 835).
inline constexpr uint32_t kCommandLogged = 835;
// `rdfcom verify` found the two nodes' protected files different.
inline constexpr uint32_t kVerifyMismatch = 980;
// `rdfcom verify` found the two nodes' protected files identical.
inline constexpr uint32_t kVerifyMatch = 981;
// `rdfcom initialize` set a node's starting position.
inline constexpr uint32_t kInitialized = 982;
// A forced takeover left a volume inconsistent: its initial copy is past
// the final save point (docs/takeover.md).
inline constexpr uint32_t kTakeoverVolumeInconsistent = 987;

// One catalogued event. `name` is the short fixed text callers log.
struct EventInfo {
  uint32_t number;
  proto::Severity severity;  // default severity
  const char* name;
};

// Every catalogued event, ordered by number.
std::span<const EventInfo> AllEvents();

// The catalogued event with this number, or null.
const EventInfo* FindEvent(uint32_t number);

}  // namespace rdf::events

#endif  // RDF_COMMON_EVENTS_CATALOG_H_
