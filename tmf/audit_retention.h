// tmf's audit retention decision, apart from its effects: from the audit
// segments, tmf's own recovery bound, what the pin files say and the retain
// settings, which segments go, how much audit is held for the backup, and
// what the retention bound does about it (warn, refuse commits, release the
// pin, recover). Pure functions: no files, no events, no locks; the store's
// applier reads the pin files, lists the segments, calls DecideRetention,
// then removes, logs and refuses (Store::Impl::EnforceRetention). The rules
// are docs/tmf.md's "Audit retention".
#ifndef RDF_TMF_AUDIT_RETENTION_H_
#define RDF_TMF_AUDIT_RETENTION_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "common/trail/reader.h"
#include "config.pb.h"

namespace rdf::tmf {

// Held audit at this share of tmf.audit_retention_bytes warns (930), and
// below it a refusal ends (932).
inline constexpr uint64_t kRetentionWarnTenths = 8;

// The held bytes at which 930 is logged: 80% of `bound_bytes`, rounded as
// bound_bytes / 10 * 8.
uint64_t RetentionWarnBytes(uint64_t bound_bytes);

// What <audit dir>/pin and pin.released say.
struct PinFiles {
  bool unreadable = false;      // audit/pin exists but cannot be read: holds everything
  // audit/pin: the backup's acknowledged ASN; nullopt: no pin file.
  std::optional<uint64_t> pin = std::nullopt;
  uint64_t released_to = 0;     // pin.released: pins at or below it are ignored; 0: none
};

// The pin retention honours.
struct Pin {
  bool pinned = false;
  uint64_t asn = 0;  // 0 when not pinned, or when the pin file is unreadable
};
Pin PinOf(const PinFiles& files);

// The first segment to keep: the newest segment starting at or below
// `bound` (every record of the segments before it is below the bound), but
// never one of the newest `retain_count`. 0 when no segment starts at or
// below `bound` (keep them all). `segments` oldest first, numbered upward.
uint64_t KeepFrom(const std::vector<trail::SegmentInfo>& segments, uint64_t bound,
                  size_t retain_count);

struct RetentionSettings {
  size_t retain_count = 2;   // tmf.retain_count
  uint64_t bound_bytes = 0;  // tmf.audit_retention_bytes
  proto::TmfConfig::RetentionPolicy policy = proto::TmfConfig::REFUSE_COMMITS;
};
RetentionSettings SettingsOf(const proto::TmfConfig& tmf);

// What retention remembers from one pass to the next.
struct RetentionState {
  bool warned = false;    // 930 logged, not yet recovered
  bool refusing = false;  // commits are refused (931), not yet recovered
};

struct RetentionDecision {
  Pin pin;
  // Segments numbered below keep_from go when `remove`.
  uint64_t keep_from = 0;
  bool remove = false;
  uint64_t kept_bytes = 0;     // audit that remains
  uint64_t kept_segments = 0;
  // Of what remains, the audit held for the backup: from the segment
  // holding pin + 1 on (what tmf keeps below it for its own recovery is
  // not held for the pin).
  uint64_t held_bytes = 0;
  // At the bound under RELEASE_PIN: write pin.released and log 933; nothing
  // below applies, and `next` is the state as it was (the caller clears
  // `warned` once pin.released is written).
  bool release_pin = false;
  bool refuse = false;     // commits start being refused: 931
  bool warn = false;       // 930
  bool recovered = false;  // 932: commits are accepted again / the warning ends
  RetentionState next;
};

// The decision of one pass. `recovery_bound`: the lowest audit ASN tmf's
// own recovery may need, as durable now. `segments` oldest first
// (trail::ListSegments of the audit trail).
RetentionDecision DecideRetention(const std::vector<trail::SegmentInfo>& segments,
                                  uint64_t recovery_bound, const PinFiles& pin,
                                  const RetentionSettings& settings, RetentionState state);

}  // namespace rdf::tmf

#endif  // RDF_TMF_AUDIT_RETENTION_H_
