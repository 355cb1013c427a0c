// The EMS event log: each process appends its numbered operator events
// (common/events/catalog.h, docs/events.md) to its own event trail, and
// `rdfcom events` reads every trail of a node back, merged by time.
//
// Storage. A process's event trail is an ordinary trail (trail_format.h)
// named after the process ("extractor", "updater-DATA01") in
// <data_dir>/events/. Each event is one record of type kEventRecordType
// whose payload is a serialized proto::Event (version kEventVersion); ASNs
// are a per-trail sequence that continues after the last ASN found on open.
// The trail rolls over at segment_bytes and only the newest segments_kept
// segments are kept, so the log of one process never exceeds about
// segment_bytes * segments_kept bytes.
//
// Durability. ERROR and CRITICAL events are durable when Log returns;
// others are made durable by a background thread within sync_interval
// (group sync: one fdatasync covers every event logged since the last). The
// trail has no shared durable-end file (one writer, readers tolerate a torn
// tail), so a power loss can take back at most the last sync_interval of
// INFO and WARNING events.
//
// Rate limiting. Events are keyed by (number, text): within repeat_window,
// the first repeat_burst events with one key are written and the rest are
// dropped; the next one written with that key (in a later window) carries
// `suppressed` = how many were dropped just before it. ERROR and CRITICAL
// are never dropped entirely: at least one per key per window is written,
// even with repeat_burst = 0. Repeats still pending at close are reported
// by one kRepeatsSuppressed event per key. Callers keep the text fixed and
// put variable data in fields (see event_catalog.h).
//
// Echo. Every written event is also printed to stderr as one line in the
// FormatEventLine form.
#ifndef RDF_COMMON_EVENTS_LOG_H_
#define RDF_COMMON_EVENTS_LOG_H_

#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/base/clock.h"
#include "common/base/file_system.h"
#include "common/trail/format.h"
#include "event.pb.h"

namespace rdf::events {

// Trail record type of an event, and the proto::Event version written.
inline constexpr uint8_t kEventRecordType = 1;
inline constexpr uint32_t kEventVersion = 1;

struct EventLogOptions {
  std::string dir;      // <data_dir>/events; created if missing
  std::string node;     // "primary", "backup"
  std::string process;  // the trail name, e.g. "updater-DATA01"
  FileSystem* fs = FileSystem::Default();  // not owned
  Clock* clock = Clock::Real();  // event times and rate-limit windows; not owned
  uint64_t segment_bytes = 4 << 20;
  uint32_t segments_kept = 8;  // at least 1
  bool echo_stderr = true;
  absl::Duration repeat_window = absl::Seconds(10);
  uint32_t repeat_burst = 5;
  // Longest time an INFO or WARNING event stays only in memory. Measured on
  // the real clock (the background thread), whatever `clock` is.
  absl::Duration sync_interval = absl::Milliseconds(100);
};

using EventFields =
    std::initializer_list<std::pair<std::string_view, std::string>>;

// Thread-safe: any thread may Log at any time; events of one process are
// stored in the order their Log calls took the log's lock.
class EventLog {
 public:
  // Opens (or creates) the process's event trail, repairing a torn tail.
  // Fails when the trail cannot be opened: kInvalidArgument for a bad name,
  // kDataLoss for damage before the tail, file-system errors as they are.
  // REQUIRES: no other EventLog (in any process) is open on the same trail.
  static absl::StatusOr<std::unique_ptr<EventLog>> Open(
      const EventLogOptions& options);
  // Reports pending suppressed repeats, then flushes; errors go to stderr.
  ~EventLog();

  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  // Appends an event. Never fails the caller: a write or sync error is
  // printed to stderr and counted (write_errors()); the failed sync is
  // retried by the next one. ERROR and CRITICAL events are synced before
  // Log returns; others within sync_interval.
  void Log(uint32_t number, proto::Severity severity, std::string_view text,
           EventFields fields = {});
  // Logs a catalogued event with its default severity and its name as text.
  // An uncatalogued number is logged as ERROR "uncatalogued event".
  void Log(uint32_t number, EventFields fields = {});

  // Makes every event logged so far durable now.
  absl::Status Flush();

  // Events logged (by Log calls, including those rate limiting dropped)
  // with this severity since Open. For metrics.
  uint64_t count(proto::Severity severity) const;
  // Events dropped by rate limiting since Open.
  uint64_t suppressed() const;
  // Append or sync failures since Open.
  uint64_t write_errors() const;

 private:
  struct Impl;
  explicit EventLog(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct EventFilter {
  int64_t since_us = 0;                       // time_us >= since_us
  proto::Severity min_severity = proto::INFO;  // severity >= min_severity
  uint32_t number = 0;                         // 0: any
  std::string process = {};                    // empty: any
};

// Reads every event trail under `dir` (all processes), merges the events by
// time_us (ties keep trail-name order, then trail order) and keeps those the
// filter admits. Uses no EndSource: a torn tail of a trail being written is
// the end of that trail. A missing `dir` gives no events. When a trail is
// damaged (or a record does not parse), the events before the damage are
// returned followed by one synthetic kTrailDamaged ERROR event for that
// trail (process = the trail name, time = the last good event's time, field
// `error`), so one bad trail hides nothing else; it is subject to the filter
// like any event. Other errors (listing `dir`, reading a file) fail.
// Memory: every admitted event of the node (bounded by the trails'
// retention).
absl::StatusOr<std::vector<proto::Event>> ReadEvents(
    FileSystem* fs, const std::string& dir, const EventFilter& filter);

// Where a follower of one folder's event trails stopped: per trail, the
// last ASN read and the position just past it.
struct EventCursor {
  struct Trail {
    uint64_t last_asn = 0;
    std::optional<trail::Position> next;
    bool damage_reported = false;  // the damage at `next` was returned once
  };
  std::map<std::string, Trail> trails;
};

// As ReadEvents, but only the events after `cursor` (per trail), which it
// advances; reads only what was appended since (it seeks to the cursor's
// position, or to the ASN after it when that segment has rotated away). A
// torn tail is left for the next call.
absl::StatusOr<std::vector<proto::Event>> ReadNewEvents(FileSystem* fs, const std::string& dir,
                                                        const EventFilter& filter,
                                                        EventCursor* cursor);

// The stderr and human form, one line without a newline:
// "2026-11-25T10:45:48.123456Z primary extractor 738 INFO synch established
// asn=123" (time in UTC to the microsecond; fields sorted by key; a value
// that is empty or holds a space, '"', '=' or a control character is quoted
// C-style; a `suppressed=N` field is added when N > 0).
std::string FormatEventLine(const proto::Event& event);

// One JSON object on one line: {"time":"<RFC 3339>","time_us":..,"node":..,
// "process":..,"number":..,"severity":"INFO","text":..,"fields":{..},
// "suppressed":..,"version":..}. Numbers are JSON numbers; field values are
// strings, escaped as common/json/writer.h says.
std::string EventToJson(const proto::Event& event);

// "2026-11-25T10:45:48.123456Z"
std::string FormatTimeUs(int64_t time_us);

// A `--since` argument: an RFC 3339 time ("2026-11-25T10:00:00Z",
// "2026-11-25T11:00:00+01:00") or a duration back from `now_us` ("30s",
// "10m", "2h", "1d", "1h30m"). kInvalidArgument otherwise.
absl::StatusOr<int64_t> ParseSince(std::string_view text, int64_t now_us);

// "INFO", "warning", ... -> Severity (case-insensitive); kInvalidArgument
// otherwise. For `--min-severity` and NotifyConfig.min_severity.
absl::StatusOr<proto::Severity> ParseSeverity(std::string_view text);

}  // namespace rdf::events

#endif  // RDF_COMMON_EVENTS_LOG_H_
