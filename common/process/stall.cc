#include "common/process/stall.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace rdf::status {
namespace {

bool ErrorState(const std::string& s) {
  return s == "RETRYING" || s == "DISK_FULL" || s == "AUDIT_DAMAGED" || s == "AUDIT_MISSING" ||
         s == "AUDIT_SYNC_FAILING" || s == "APPLY_RETRYING" || s == "REFUSING_COMMITS";
}

}  // namespace

Progress ProgressOf(const proto::ProcessStatus& st) {
  Progress p;
  const std::string& name = st.process();
  if (name == "extractor") {
    p.position = st.acked_asn();
    p.waiting = st.audit_end_asn() > st.acked_asn();
    p.why = absl::StrCat("the backup has confirmed through ASN ", st.acked_asn(),
                         ", the primary's audit ends at ", st.audit_end_asn());
  } else if (name == "receiver") {
    p.position = st.save_point_asn();
    p.waiting = st.audit_end_asn() > st.save_point_asn();
    p.why = absl::StrCat("save point at ASN ", st.save_point_asn(),
                         ", the primary's audit ends at ", st.audit_end_asn());
  } else if (absl::StartsWith(name, "updater")) {
    p.position = st.applied_asn();
    p.waiting = st.save_point_asn() > st.applied_asn();
    p.why = absl::StrCat("applied through ASN ", st.applied_asn(), ", save point at ASN ",
                         st.save_point_asn());
  } else if (name == "purger") {
    p.position = st.purged_segments();
    p.why = "its purge passes fail";
  } else if (name == "tmf") {
    p.position = st.applied_asn();
    p.waiting = st.backlog_records() > 0;
    p.why = absl::StrCat(st.backlog_records(), " committed transactions wait for the volumes");
  }
  if (ErrorState(st.state())) {
    p.waiting = true;
    p.why = absl::StrCat("state ", st.state(), ", ", p.why);
  }
  return p;
}

StallDetector::Verdict StallDetector::Observe(const proto::ProcessStatus& st, absl::Time now) {
  const Progress p = ProgressOf(st);
  if (!seen_ || p.position > position_ || !p.waiting) since_ = now;
  seen_ = true;
  position_ = p.position;
  Verdict v;
  v.for_ms = p.waiting ? absl::ToInt64Milliseconds(now - since_) : 0;
  v.stalled = p.waiting && now - since_ > after_;
  v.began = v.stalled && !stalled_;
  v.ended = !v.stalled && stalled_;
  stalled_ = v.stalled;
  if (v.stalled) {
    v.reason = st.last_error().empty() ? p.why : absl::StrCat(p.why, ": ", st.last_error());
  }
  return v;
}

}  // namespace rdf::status
