#include "common/events/catalog.h"

#include <algorithm>
#include <array>

namespace rdf::events {
namespace {

using proto::CRITICAL;
using proto::ERROR;
using proto::INFO;
using proto::WARNING;

// Ordered by number (FindEvent binary-searches; event_log_test checks it).
constexpr std::array kEvents = {
    EventInfo{kFileSystemError, ERROR, "file-system error"},
    EventInfo{kTakeoverComplete, WARNING, "takeover complete"},
    EventInfo{kTakeoverFailed, CRITICAL, "takeover failed"},
    EventInfo{kTakeoverUpdaterFailed, ERROR, "updater failed during takeover"},
    EventInfo{kLastMatPosition, INFO, "last MAT position received"},
    EventInfo{kEstablishingSynch, INFO, "establishing synch"},
    EventInfo{kSynchEstablished, INFO, "synch established"},
    EventInfo{kStorageError, ERROR, "storage error; restarting"},
    EventInfo{kResynchronizing, WARNING, "batch out of sequence; resynchronizing"},
    EventInfo{kSegmentPurged, INFO, "image trail segment purged"},
    EventInfo{kPurgeError, ERROR, "purge error"},
    EventInfo{kPurgePassEndedEarly, WARNING, "purge pass ended early"},
    EventInfo{kCommandLogged, INFO, "command"},
    EventInfo{kRestartingAt, INFO, "restarting at image position"},
    EventInfo{kAuditFileMissing, CRITICAL, "audit trail file is missing"},
    EventInfo{kDrainComplete, INFO, "drain complete"},
    EventInfo{kPurgePassStarted, INFO, "purge pass started"},
    EventInfo{kRtdOverThreshold, WARNING, "RTD over threshold"},
    EventInfo{kRtdUnderThreshold, INFO, "RTD back under threshold"},
    EventInfo{kUndoPass, INFO, "undo pass started"},
    EventInfo{kSavePoint, INFO, "save point"},
    EventInfo{kProcessStarted, INFO, "process started"},
    EventInfo{kProcessDied, ERROR, "process died"},
    EventInfo{kProcessCrashLoop, CRITICAL, "process keeps dying"},
    EventInfo{kProcessStopped, INFO, "process stopped"},
    EventInfo{kStateChanged, INFO, "state changed"},
    EventInfo{kPeerUnreachable, WARNING, "peer node unreachable"},
    EventInfo{kPeerReachable, INFO, "peer node reachable"},
    EventInfo{kNotifyFailed, WARNING, "notify command failed"},
    EventInfo{kProcessStartFailed, ERROR, "process failed to start"},
    EventInfo{kProcessNotStopped, ERROR, "process did not stop"},
    EventInfo{kAuditRetentionWarning, WARNING, "audit retention at 80% of bound"},
    EventInfo{kAuditRetentionBoundReached, CRITICAL,
              "audit retention bound reached; commits refused"},
    EventInfo{kAuditRetentionRecovered, INFO, "audit retention back under warning level"},
    EventInfo{kAuditPinReleased, CRITICAL, "audit pin released"},
    EventInfo{kRecoveryComplete, INFO, "recovery complete"},
    EventInfo{kTransactionTooLarge, WARNING, "transaction too large"},
    EventInfo{kTxidFloorRaised, INFO, "transaction ids raised above takeover floor"},
    EventInfo{kTmfVolumeRolledBack, WARNING, "volume rolled back to its checkpoint copy"},
    EventInfo{kConnectFailed, WARNING, "cannot connect to receiver"},
    EventInfo{kConnectionLost, WARNING, "connection to receiver lost"},
    EventInfo{kAuthenticationFailed, ERROR, "authentication failed"},
    EventInfo{kRefusedByReceiver, ERROR, "refused by receiver"},
    EventInfo{kShutdownRecordRead, INFO, "shutdown record read"},
    EventInfo{kSenderRefused, ERROR, "sender refused"},
    EventInfo{kBadProtocolVersion, ERROR, "unsupported protocol version"},
    EventInfo{kMalformedMessage, ERROR, "malformed message"},
    EventInfo{kOversizedMessage, ERROR, "oversized message"},
    EventInfo{kDiskFullStopped, CRITICAL, "image trail disk full; receiving stopped"},
    EventInfo{kDiskFullResumed, INFO, "disk space available; receiving resumed"},
    EventInfo{kFencedAuditRefused, ERROR, "audit refused after takeover"},
    EventInfo{kSenderConnected, INFO, "sender connected"},
    EventInfo{kSenderSilent, WARNING, "sender silent"},
    EventInfo{kStorageErrorCleared, INFO, "storage error cleared"},
    EventInfo{kDuplicateKeySkipped, WARNING, "duplicate key skipped (error 10)"},
    EventInfo{kMissingKeySkipped, WARNING, "missing key skipped (error 11)"},
    EventInfo{kUpdaterStoppedOnError, CRITICAL, "updater stopped on apply error"},
    EventInfo{kUpdatingStopped, INFO, "updating stopped"},
    EventInfo{kUpdatingStarted, INFO, "updating started"},
    EventInfo{kDdlApplied, INFO, "DDL applied"},
    EventInfo{kVolumeMapGrown, INFO, "volume map grown"},
    EventInfo{kUndoPassComplete, INFO, "undo pass complete"},
    EventInfo{kVolumeRolledBack, WARNING, "volume rolled back to its checkpoint"},
    EventInfo{kTakeoverStarted, WARNING, "takeover started"},
    EventInfo{kTransactionsLost, WARNING, "transactions lost"},
    EventInfo{kTakeoverRedoFailed, ERROR, "takeover REDO failed"},
    EventInfo{kPurgeHeldByTransaction, WARNING, "purge held by an open transaction"},
    EventInfo{kVerifyMismatch, ERROR, "verify found differences"},
    EventInfo{kVerifyMatch, INFO, "verify found files identical"},
    EventInfo{kInitialized, INFO, "initialized"},
    EventInfo{kProcessHung, ERROR, "process hung"},
    EventInfo{kHungProcessKilled, ERROR, "hung process killed"},
    EventInfo{kControlRequestRefused, WARNING, "control request refused"},
    EventInfo{kTakeoverVolumeInconsistent, ERROR, "takeover left a volume inconsistent"},
    EventInfo{kTrailDamaged, ERROR, "trail damaged"},
    EventInfo{kTornTailRepaired, WARNING, "torn trail tail repaired"},
    EventInfo{kRepeatsSuppressed, INFO, "repeated events suppressed"},
    EventInfo{kProcessReady, INFO, "process ready"},
    EventInfo{kProcessStopping, INFO, "process stopping"},
    EventInfo{kStageStalled, ERROR, "stage stalled"},
    EventInfo{kStageResumed, INFO, "stage advancing again"},
};

constexpr bool IsSortedUnique() {
  for (size_t i = 1; i < kEvents.size(); ++i) {
    if (kEvents[i - 1].number >= kEvents[i].number) return false;
  }
  return true;
}
static_assert(IsSortedUnique(), "kEvents must be ordered by number, no repeats");

}  // namespace

std::span<const EventInfo> AllEvents() { return kEvents; }

const EventInfo* FindEvent(uint32_t number) {
  auto it = std::lower_bound(
      kEvents.begin(), kEvents.end(), number,
      [](const EventInfo& e, uint32_t n) { return e.number < n; });
  if (it == kEvents.end() || it->number != number) return nullptr;
  return &*it;
}

}  // namespace rdf::events
