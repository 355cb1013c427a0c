#include "tmf/audit_retention.h"

#include <algorithm>

namespace rdf::tmf {
namespace {

// The segment holding `asn`: the newest starting at or below it (0: none).
uint64_t SegmentHolding(const std::vector<trail::SegmentInfo>& segments, uint64_t asn) {
  uint64_t holding = 0;
  for (const trail::SegmentInfo& s : segments) {
    if (s.first_asn <= asn) holding = s.segment;
  }
  return holding;
}

}  // namespace

uint64_t RetentionWarnBytes(uint64_t bound_bytes) {
  return bound_bytes / 10 * kRetentionWarnTenths;
}

Pin PinOf(const PinFiles& files) {
  // An unreadable pin holds everything: deleting audit the backup may
  // still need is the one thing retention must never do.
  if (files.unreadable) return {true, 0};
  if (files.pin.has_value() && (files.released_to == 0 || *files.pin > files.released_to)) {
    return {true, *files.pin};
  }
  return {};
}

uint64_t KeepFrom(const std::vector<trail::SegmentInfo>& segments, uint64_t bound,
                  size_t retain_count) {
  // Segment i may go when every record in it is below the bound, that is
  // when segment i+1 starts at or below it.
  const uint64_t holding = SegmentHolding(segments, bound);
  if (segments.size() <= retain_count) return segments.empty() ? 0 : segments.front().segment;
  if (retain_count == 0) return holding;
  return std::min(holding, segments[segments.size() - retain_count].segment);
}

RetentionSettings SettingsOf(const proto::TmfConfig& tmf) {
  return {tmf.retain_count(), tmf.audit_retention_bytes(), tmf.retention_policy()};
}

RetentionDecision DecideRetention(const std::vector<trail::SegmentInfo>& segments,
                                  uint64_t recovery_bound, const PinFiles& pin,
                                  const RetentionSettings& settings, RetentionState state) {
  RetentionDecision d;
  d.pin = PinOf(pin);
  const uint64_t bound = d.pin.pinned ? std::min(recovery_bound, d.pin.asn + 1) : recovery_bound;
  d.keep_from = KeepFrom(segments, bound, settings.retain_count);
  d.remove = d.keep_from != 0 && !segments.empty() && segments.front().segment < d.keep_from;
  const uint64_t pin_from = SegmentHolding(segments, d.pin.asn + 1);
  for (const trail::SegmentInfo& s : segments) {
    if (s.segment < d.keep_from) continue;
    d.kept_bytes += s.bytes;
    ++d.kept_segments;
    if (s.segment >= pin_from) d.held_bytes += s.bytes;
  }
  const uint64_t limit = settings.bound_bytes;
  const uint64_t warn_at = RetentionWarnBytes(limit);
  d.next = state;
  if (d.pin.pinned && d.held_bytes >= limit) {
    if (settings.policy == proto::TmfConfig::RELEASE_PIN) {
      d.release_pin = true;
      return d;
    }
    if (!d.next.refusing) {
      d.refuse = true;
      d.next.refusing = true;
    }
  }
  if (d.pin.pinned && d.held_bytes >= warn_at) {
    if (!d.next.warned) {
      d.warn = true;
      d.next.warned = true;
    }
  } else if (d.held_bytes < warn_at) {
    d.recovered = d.next.warned || d.next.refusing;
    d.next = RetentionState{};
  }
  return d;
}

}  // namespace rdf::tmf
