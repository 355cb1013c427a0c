#include "common/events/log.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <map>
#include <set>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/base/status_macros.h"
#include "common/events/catalog.h"
#include "common/json/writer.h"
#include "common/trail/format.h"
#include "common/trail/reader.h"
#include "common/trail/writer.h"

namespace rdf::events {
namespace {

// Rate-limit keys kept before expired ones are pruned (memory stays bounded
// however many distinct texts callers invent).
constexpr size_t kRepeatKeysBeforePrune = 4096;
// Write errors are printed to stderr at most this often.
constexpr int64_t kErrorPrintIntervalUs = 1'000'000;

size_t SeverityIndex(proto::Severity s) {
  int i = static_cast<int>(s);
  return i < 0 || i > proto::CRITICAL ? 0 : static_cast<size_t>(i);
}

std::string SeverityName(proto::Severity s) {
  const std::string& name = proto::Severity_Name(s);
  return name.empty() ? absl::StrCat(static_cast<int>(s)) : name;
}

// Length of the valid UTF-8 sequence at the start of `s`, or 0.
size_t Utf8SequenceLength(std::string_view s) {
  auto c = static_cast<unsigned char>(s[0]);
  size_t n;
  uint32_t min;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) { n = 2; min = 0x80; }
  else if ((c & 0xF0) == 0xE0) { n = 3; min = 0x800; }
  else if ((c & 0xF8) == 0xF0) { n = 4; min = 0x10000; }
  else return 0;
  if (s.size() < n) return 0;
  uint32_t cp = c & (0x7F >> n);
  for (size_t i = 1; i < n; ++i) {
    auto cc = static_cast<unsigned char>(s[i]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

// proto3 strings must be UTF-8 (a record holding anything else would not
// parse back), so invalid bytes become U+FFFD.
std::string ValidUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  while (!s.empty()) {
    size_t n = Utf8SequenceLength(s);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      n = 1;
    } else {
      out.append(s.data(), n);
    }
    s.remove_prefix(n);
  }
  return out;
}

bool NeedsQuotes(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v) {
    auto u = static_cast<unsigned char>(c);
    if (c == ' ' || c == '"' || c == '=' || c == '\\' || u < 0x20 || u == 0x7F)
      return true;
  }
  return false;
}

std::vector<std::pair<std::string, std::string>> SortedFields(
    const proto::Event& e) {
  std::vector<std::pair<std::string, std::string>> v(e.fields().begin(),
                                                     e.fields().end());
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace

// ---------------------------------------------------------------------------
// EventLog

struct EventLog::Impl {
  struct Repeats {
    int64_t window_start_us = 0;  // clock->MonotonicMicros()
    uint32_t written = 0;         // in this window
    uint32_t suppressed = 0;      // dropped since the last one written
  };
  using RepeatKey = std::pair<uint32_t, std::string>;

  EventLogOptions options;
  std::unique_ptr<trail::TrailWriter> writer;

  absl::Mutex mu;  // order of appends, and everything below it
  uint64_t next_asn ABSL_GUARDED_BY(mu) = 1;
  absl::flat_hash_map<RepeatKey, Repeats> repeats ABSL_GUARDED_BY(mu);
  size_t prune_at ABSL_GUARDED_BY(mu) = kRepeatKeysBeforePrune;
  bool dirty ABSL_GUARDED_BY(mu) = false;  // appended since a sync began
  bool stop ABSL_GUARDED_BY(mu) = false;
  int64_t last_error_print_us ABSL_GUARDED_BY(mu) = INT64_MIN;

  absl::Mutex rotate_mu;  // serializes segment removal
  uint64_t rotated_at ABSL_GUARDED_BY(rotate_mu) = 0;

  std::array<std::atomic<uint64_t>, 5> counts{};
  std::atomic<uint64_t> suppressed_total{0};
  std::atomic<uint64_t> write_errors{0};

  std::thread syncer;

  // True when the event may be written; *carried is then the number of its
  // repeats dropped just before it.
  bool Admit(uint32_t number, proto::Severity severity, std::string_view text,
             uint32_t* carried) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void PruneRepeats(int64_t now_us) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Appends and echoes one event (already admitted).
  void Write(proto::Event& event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void ReportError(const absl::Status& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Syncs, then removes segments beyond segments_kept.
  absl::Status SyncAndRotate() ABSL_LOCKS_EXCLUDED(mu);
  absl::Status Rotate() ABSL_LOCKS_EXCLUDED(rotate_mu);
  void SyncLoop() ABSL_LOCKS_EXCLUDED(mu);
  void SyncReportingErrors() ABSL_LOCKS_EXCLUDED(mu);
  void ReportPendingRepeats() ABSL_LOCKS_EXCLUDED(mu);
};

bool EventLog::Impl::Admit(uint32_t number, proto::Severity severity,
                           std::string_view text, uint32_t* carried) {
  int64_t now = options.clock->MonotonicMicros();
  if (repeats.size() >= prune_at) PruneRepeats(now);
  auto [it, inserted] = repeats.try_emplace(RepeatKey(number, text));
  Repeats& r = it->second;
  if (inserted ||
      now - r.window_start_us >= absl::ToInt64Microseconds(options.repeat_window)) {
    r.window_start_us = now;
    r.written = 0;
  }
  uint32_t burst = options.repeat_burst;
  if (severity >= proto::ERROR) burst = std::max<uint32_t>(burst, 1);
  if (r.written < burst) {
    ++r.written;
    *carried = r.suppressed;
    r.suppressed = 0;
    return true;
  }
  ++r.suppressed;
  return false;
}

void EventLog::Impl::PruneRepeats(int64_t now_us) {
  int64_t window = absl::ToInt64Microseconds(options.repeat_window);
  for (auto it = repeats.begin(); it != repeats.end();) {
    const Repeats& r = it->second;
    if (r.suppressed == 0 && now_us - r.window_start_us >= window) {
      repeats.erase(it++);
    } else {
      ++it;
    }
  }
  // Still large: forget everything (pending suppressed counts are lost, which
  // only makes a later `suppressed` field smaller than the truth).
  if (repeats.size() >= 4 * kRepeatKeysBeforePrune) repeats.clear();
  prune_at = std::max(kRepeatKeysBeforePrune, 2 * repeats.size());
}

void EventLog::Impl::Write(proto::Event& event) {
  event.set_time_us(options.clock->NowMicros());
  std::string payload = event.SerializeAsString();
  absl::Status s = writer->Append(next_asn, kEventRecordType, payload,
                                  event.time_us());
  if (!s.ok()) {
    // A pending write error makes Append fail until a sync succeeds; try
    // one (it retries the buffered writes) and append again.
    if (writer->Sync().ok()) {
      s = writer->Append(next_asn, kEventRecordType, payload, event.time_us());
    }
  }
  if (s.ok()) {
    ++next_asn;
    dirty = true;
  } else {
    ReportError(Annotate(s, absl::StrCat("event ", event.number(), " lost")));
  }
  if (options.echo_stderr) {
    std::string line = FormatEventLine(event);
    line.push_back('\n');
    std::fwrite(line.data(), 1, line.size(), stderr);
  }
}

void EventLog::Impl::ReportError(const absl::Status& s) {
  write_errors.fetch_add(1);
  int64_t now = options.clock->MonotonicMicros();
  if (last_error_print_us != INT64_MIN &&
      now - last_error_print_us < kErrorPrintIntervalUs) {
    return;
  }
  last_error_print_us = now;
  std::string line =
      absl::StrCat("rdf event log ", JoinPath(options.dir, options.process),
                   ": ", s.ToString(), " (", write_errors.load(),
                   " errors so far)\n");
  std::fwrite(line.data(), 1, line.size(), stderr);
}

absl::Status EventLog::Impl::Rotate() {
  uint64_t kept = std::max<uint32_t>(options.segments_kept, 1);
  uint64_t segment = writer->durable_end().pos.segment;
  absl::MutexLock lock(&rotate_mu);
  if (segment <= rotated_at) return absl::OkStatus();
  if (segment > kept) {
    RDF_RETURN_IF_ERROR(writer->RemoveSegmentsBefore(segment - kept + 1));
  }
  rotated_at = segment;
  return absl::OkStatus();
}

absl::Status EventLog::Impl::SyncAndRotate() {
  RDF_RETURN_IF_ERROR(writer->Sync());
  return Rotate();
}

void EventLog::Impl::SyncReportingErrors() {
  absl::Status s = SyncAndRotate();
  if (!s.ok()) {
    absl::MutexLock lock(&mu);
    dirty = true;  // retry at the next interval
    ReportError(s);
  }
}

void EventLog::Impl::SyncLoop() {
  for (;;) {
    {
      absl::MutexLock lock(&mu);
      mu.Await(absl::Condition(
          +[](Impl* impl) ABSL_NO_THREAD_SAFETY_ANALYSIS {
            return impl->dirty || impl->stop;
          },
          this));
      if (stop) return;
      // Gather what else arrives within the interval into one sync.
      mu.AwaitWithTimeout(absl::Condition(&stop), options.sync_interval);
      if (stop) return;  // the destructor syncs
      dirty = false;
    }
    SyncReportingErrors();
  }
}

void EventLog::Impl::ReportPendingRepeats() {
  absl::MutexLock lock(&mu);
  std::map<RepeatKey, uint32_t> pending;  // ordered, for a stable output
  for (const auto& [key, r] : repeats) {
    if (r.suppressed > 0) pending[key] = r.suppressed;
  }
  for (const auto& [key, count] : pending) {
    proto::Event e;
    e.set_version(kEventVersion);
    e.set_node(options.node);
    e.set_process(options.process);
    e.set_number(kRepeatsSuppressed);
    e.set_severity(proto::INFO);
    e.set_text(FindEvent(kRepeatsSuppressed)->name);
    (*e.mutable_fields())["number"] = absl::StrCat(key.first);
    (*e.mutable_fields())["text"] = key.second;
    e.set_suppressed(count);
    counts[proto::INFO].fetch_add(1);
    Write(e);
  }
  repeats.clear();
}

EventLog::EventLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

EventLog::~EventLog() {
  {
    absl::MutexLock lock(&impl_->mu);
    impl_->stop = true;
  }
  impl_->syncer.join();
  impl_->ReportPendingRepeats();
  absl::Status s = impl_->SyncAndRotate();
  if (!s.ok()) {
    absl::MutexLock lock(&impl_->mu);
    impl_->last_error_print_us = INT64_MIN;  // always say it at close
    impl_->ReportError(Annotate(s, "flush at close"));
  }
}

absl::StatusOr<std::unique_ptr<EventLog>> EventLog::Open(
    const EventLogOptions& options) {
  if (options.dir.empty()) {
    return absl::InvalidArgumentError("event log: empty directory");
  }
  if (options.process.empty() ||
      options.process.size() > trail::kMaxNameLength ||
      options.process.find('/') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "event log: bad process name \"", options.process, "\""));
  }
  if (options.fs == nullptr || options.clock == nullptr) {
    return absl::InvalidArgumentError("event log: null file system or clock");
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  trail::WriterOptions w;
  w.dir = options.dir;
  w.name = options.process;
  w.segment_bytes = options.segment_bytes;
  w.fs = options.fs;
  w.clock = options.clock;
  w.publisher = nullptr;
  // On the real file system the shared end file gives Open the line between
  // a torn tail (cut) and damage (refused): without it a crash mid-write
  // that left a hole would stop the process from starting. (Its readers
  // read to the physical end and need no end file.)
  w.shared_end = options.fs == FileSystem::Default();
  w.first_asn = 1;
  // Readers read to the physical end: what they may have read stays (Open
  // adopts and syncs it rather than cutting it; see trail_writer.h).
  w.cut_past_published_end = false;
  RDF_ASSIGN_OR_RETURN(impl->writer, trail::TrailWriter::Open(w));
  {
    absl::MutexLock lock(&impl->mu);
    impl->next_asn = impl->writer->last_asn() + 1;
  }
  RDF_RETURN_IF_ERROR(impl->Rotate());
  Impl* raw = impl.get();
  impl->syncer = std::thread([raw] { raw->SyncLoop(); });
  return std::unique_ptr<EventLog>(new EventLog(std::move(impl)));
}

void EventLog::Log(uint32_t number, proto::Severity severity,
                   std::string_view text, EventFields fields) {
  Impl& d = *impl_;
  d.counts[SeverityIndex(severity)].fetch_add(1);
  proto::Event event;
  event.set_version(kEventVersion);
  event.set_node(ValidUtf8(d.options.node));
  event.set_process(ValidUtf8(d.options.process));
  event.set_number(number);
  event.set_severity(severity);
  event.set_text(ValidUtf8(text));
  for (const auto& [key, value] : fields) {
    (*event.mutable_fields())[ValidUtf8(key)] = ValidUtf8(value);
  }
  {
    absl::MutexLock lock(&d.mu);
    uint32_t carried = 0;
    if (!d.Admit(number, severity, event.text(), &carried)) {
      d.suppressed_total.fetch_add(1);
      return;
    }
    event.set_suppressed(carried);
    d.Write(event);
  }
  if (severity >= proto::ERROR) d.SyncReportingErrors();
}

void EventLog::Log(uint32_t number, EventFields fields) {
  const EventInfo* info = FindEvent(number);
  if (info == nullptr) {
    Log(number, proto::ERROR, "uncatalogued event", fields);
  } else {
    Log(number, info->severity, info->name, fields);
  }
}

absl::Status EventLog::Flush() { return impl_->SyncAndRotate(); }

uint64_t EventLog::count(proto::Severity severity) const {
  return impl_->counts[SeverityIndex(severity)].load();
}

uint64_t EventLog::suppressed() const { return impl_->suppressed_total.load(); }

uint64_t EventLog::write_errors() const { return impl_->write_errors.load(); }

// ---------------------------------------------------------------------------
// Reading

namespace {

bool Admits(const EventFilter& f, const proto::Event& e) {
  return e.time_us() >= f.since_us && e.severity() >= f.min_severity &&
         (f.number == 0 || e.number() == f.number) &&
         (f.process.empty() || e.process() == f.process);
}

// Trail names found in `files` ("<trail>.<10 digits>"), sorted.
std::set<std::string> TrailNames(const std::vector<std::string>& files) {
  std::set<std::string> names;
  for (const std::string& file : files) {
    size_t dot = file.rfind('.');
    if (dot == std::string::npos || dot == 0) continue;
    std::string name = file.substr(0, dot);
    uint64_t segment;
    if (trail::ParseSegmentFileName(file, name, &segment)) names.insert(name);
  }
  return names;
}

proto::Event DamageEvent(const std::string& trail_name, const proto::Event& last,
                         uint64_t last_asn, const absl::Status& error) {
  proto::Event e;
  e.set_version(kEventVersion);
  e.set_time_us(last.time_us());
  e.set_node(last.node());
  e.set_process(trail_name);
  e.set_number(kTrailDamaged);
  e.set_severity(proto::ERROR);
  e.set_text(FindEvent(kTrailDamaged)->name);
  (*e.mutable_fields())["trail"] = trail_name;
  (*e.mutable_fields())["after_asn"] = absl::StrCat(last_asn);
  (*e.mutable_fields())["error"] = ValidUtf8(error.ToString());
  return e;
}

absl::StatusOr<std::unique_ptr<trail::TrailReader>> OpenAt(
    FileSystem* fs, const std::string& dir, const std::string& name,
    uint64_t asn) {
  trail::ReaderOptions r;
  r.dir = dir;
  r.name = name;
  r.fs = fs;
  r.limit = nullptr;  // tolerate the torn tail of a live writer
  RDF_ASSIGN_OR_RETURN(auto reader, trail::TrailReader::Open(r));
  if (asn > 1) RDF_RETURN_IF_ERROR(reader->SeekToAsn(asn));
  return reader;
}

absl::Status ReadFrom(std::unique_ptr<trail::TrailReader> reader, FileSystem* fs,
                      const std::string& dir, const std::string& name,
                      const EventFilter& filter, std::vector<proto::Event>* out,
                      EventCursor::Trail* cursor, uint64_t last_asn);

// Appends the admitted events of one trail to *out.
absl::Status ReadTrail(FileSystem* fs, const std::string& dir,
                       const std::string& name, const EventFilter& filter,
                       std::vector<proto::Event>* out,
                       EventCursor::Trail* cursor = nullptr) {
  uint64_t last_asn = cursor != nullptr ? cursor->last_asn : 0;
  if (cursor != nullptr && cursor->next.has_value()) {
    // Straight to where the previous read stopped, when its segment is
    // still there.
    trail::ReaderOptions r;
    r.dir = dir;
    r.name = name;
    r.fs = fs;
    r.limit = nullptr;
    absl::StatusOr<std::unique_ptr<trail::TrailReader>> opened = trail::TrailReader::Open(r);
    if (opened.ok() && (*opened)->SeekToPosition(*cursor->next).ok()) {
      return ReadFrom(std::move(*opened), fs, dir, name, filter, out, cursor, last_asn);
    }
  }
  return ReadFrom(nullptr, fs, dir, name, filter, out, cursor, last_asn);
}

absl::Status ReadFrom(std::unique_ptr<trail::TrailReader> reader, FileSystem* fs,
                      const std::string& dir, const std::string& name,
                      const EventFilter& filter, std::vector<proto::Event>* out,
                      EventCursor::Trail* cursor, uint64_t last_asn) {
  proto::Event last;
  // A segment removed by the writer's rotation while we read it is kNotFound:
  // start again after the last record read.
  constexpr int kMaxReopens = 3;
  int reopens = 0;
  for (;;) {
    absl::Status error;
    if (reader == nullptr) {
      auto opened = OpenAt(fs, dir, name, last_asn + 1);
      if (opened.ok()) {
        reader = *std::move(opened);
        continue;
      }
      error = opened.status();
    } else {
      auto next = reader->Next();
      if (next.ok()) {
        if (!next->has_value()) return absl::OkStatus();
        const trail::Record& rec = **next;
        if (rec.asn <= last_asn && last_asn > 0) continue;  // read before
        if (cursor != nullptr) {
          cursor->last_asn = rec.asn;
          cursor->next = rec.next;
          cursor->damage_reported = false;
        }
        if (rec.type != kEventRecordType) continue;  // a later kind: skip
        proto::Event event;
        if (!event.ParseFromString(rec.payload)) {
          error = absl::DataLossError(absl::StrCat(
              "event record asn ", rec.asn, " at ", trail::ToString(rec.pos),
              " does not parse"));
        } else {
          last = event;
          last_asn = rec.asn;
          if (Admits(filter, event)) out->push_back(std::move(event));
          continue;
        }
      } else {
        error = next.status();
      }
    }
    if (absl::IsNotFound(error) && reopens < kMaxReopens) {
      ++reopens;
      reader.reset();
      continue;
    }
    if (absl::IsNotFound(error) && last_asn == 0) {
      return absl::OkStatus();  // the whole trail went away meanwhile
    }
    if (absl::IsDataLoss(error) || absl::IsNotFound(error)) {
      // A follower hears of one damage once, not at every poll.
      if (cursor != nullptr && cursor->damage_reported) return absl::OkStatus();
      if (cursor != nullptr) cursor->damage_reported = true;
      proto::Event damage = DamageEvent(name, last, last_asn, error);
      if (Admits(filter, damage)) out->push_back(std::move(damage));
      return absl::OkStatus();
    }
    return Annotate(error, absl::StrCat("event trail ", JoinPath(dir, name)));
  }
}

}  // namespace

absl::StatusOr<std::vector<proto::Event>> ReadEvents(
    FileSystem* fs, const std::string& dir, const EventFilter& filter) {
  std::vector<proto::Event> events;
  if (!fs->Exists(dir)) return events;
  RDF_ASSIGN_OR_RETURN(std::vector<std::string> files, fs->ListDir(dir));
  for (const std::string& name : TrailNames(files)) {
    RDF_RETURN_IF_ERROR(ReadTrail(fs, dir, name, filter, &events));
  }
  std::stable_sort(events.begin(), events.end(),
                   [](const proto::Event& a, const proto::Event& b) {
                     return a.time_us() < b.time_us();
                   });
  return events;
}

absl::StatusOr<std::vector<proto::Event>> ReadNewEvents(FileSystem* fs, const std::string& dir,
                                                        const EventFilter& filter,
                                                        EventCursor* cursor) {
  std::vector<proto::Event> events;
  if (!fs->Exists(dir)) return events;
  RDF_ASSIGN_OR_RETURN(std::vector<std::string> files, fs->ListDir(dir));
  for (const std::string& name : TrailNames(files)) {
    RDF_RETURN_IF_ERROR(ReadTrail(fs, dir, name, filter, &events, &cursor->trails[name]));
  }
  std::stable_sort(events.begin(), events.end(),
                   [](const proto::Event& a, const proto::Event& b) {
                     return a.time_us() < b.time_us();
                   });
  return events;
}

// ---------------------------------------------------------------------------
// Formats

std::string FormatTimeUs(int64_t time_us) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::FromUnixMicros(time_us),
                          absl::UTCTimeZone());
}

std::string FormatEventLine(const proto::Event& e) {
  auto word = [](const std::string& s) -> const std::string& {
    static const std::string* const kDash = new std::string("-");
    return s.empty() ? *kDash : s;
  };
  std::string line =
      absl::StrCat(FormatTimeUs(e.time_us()), " ", word(e.node()), " ",
                   word(e.process()), " ", e.number(), " ",
                   SeverityName(e.severity()), " ", e.text());
  for (const auto& [key, value] : SortedFields(e)) {
    absl::StrAppend(&line, " ", key, "=");
    if (NeedsQuotes(value)) {
      absl::StrAppend(&line, "\"", absl::CEscape(value), "\"");
    } else {
      line += value;
    }
  }
  if (e.suppressed() > 0) absl::StrAppend(&line, " suppressed=", e.suppressed());
  return line;
}

std::string EventToJson(const proto::Event& e) {
  json::Writer w;
  w.BeginObject()
      .Field("time", FormatTimeUs(e.time_us()))
      .Field("time_us", e.time_us())
      .Field("node", e.node())
      .Field("process", e.process())
      .Field("number", e.number())
      .Field("severity", SeverityName(e.severity()))
      .Field("text", e.text())
      .Key("fields")
      .BeginObject();
  for (const auto& [key, value] : SortedFields(e)) w.Field(key, value);
  w.EndObject().Field("suppressed", e.suppressed()).Field("version", e.version()).EndObject();
  return w.str();
}

absl::StatusOr<int64_t> ParseSince(std::string_view text_arg, int64_t now_us) {
  // This Abseil's string_view is not std::string_view.
  absl::string_view text(text_arg.data(), text_arg.size());
  absl::string_view t = absl::StripAsciiWhitespace(text);
  auto invalid = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad --since \"", text,
        "\": want an RFC 3339 time (2026-11-25T10:00:00Z) or a duration "
        "back from now (30s, 10m, 2h, 1d)"));
  };
  if (t.empty()) return invalid();
  absl::Time when;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, t, &when, &err)) {
    return absl::ToUnixMicros(when);
  }
  // A duration: optional "<N>d" then anything absl::ParseDuration takes.
  absl::Duration back = absl::ZeroDuration();
  size_t d = t.find('d');
  if (d != absl::string_view::npos) {
    int64_t days;
    if (!absl::SimpleAtoi(t.substr(0, d), &days) || days < 0 ||
        days > 100'000) {
      return invalid();
    }
    back = absl::Hours(24 * days);
    t.remove_prefix(d + 1);
  }
  if (!t.empty()) {
    absl::Duration rest;
    // ParseDuration wants a unit on every number except a bare "0".
    if (!absl::ParseDuration(t, &rest) || rest < absl::ZeroDuration() ||
        rest == absl::InfiniteDuration()) {
      return invalid();
    }
    back += rest;
  }
  return now_us - absl::ToInt64Microseconds(back);
}

absl::StatusOr<proto::Severity> ParseSeverity(std::string_view text_arg) {
  absl::string_view text(text_arg.data(), text_arg.size());
  proto::Severity s;
  std::string upper = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(text));
  if (upper == "SEVERITY_UNSPECIFIED" || !proto::Severity_Parse(upper, &s)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad severity \"", text, "\": want INFO, WARNING, ERROR or CRITICAL"));
  }
  return s;
}

}  // namespace rdf::events
