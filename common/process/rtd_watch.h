// RTD warnings: WARNING 861 when a process's RTD goes over its threshold,
// INFO 862 when it comes back under (once per crossing, not per sample).
#ifndef RDF_COMMON_PROCESS_RTD_WATCH_H_
#define RDF_COMMON_PROCESS_RTD_WATCH_H_

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "common/events/catalog.h"
#include "common/events/log.h"

namespace rdf {

class RtdWatch {
 public:
  RtdWatch(int64_t threshold_ms, events::EventLog* events)
      : threshold_ms_(threshold_ms), events_(events) {}

  // Feed each published RTD; negative (unknown) values are ignored.
  void Observe(int64_t rtd_ms) {
    if (rtd_ms < 0) return;
    bool over = rtd_ms > threshold_ms_;
    if (over == over_) return;
    over_ = over;
    events_->Log(over ? events::kRtdOverThreshold : events::kRtdUnderThreshold,
                 {{"rtd_ms", absl::StrCat(rtd_ms)},
                  {"threshold_ms", absl::StrCat(threshold_ms_)}});
  }
  bool over() const { return over_; }

 private:
  const int64_t threshold_ms_;
  events::EventLog* events_;
  bool over_ = false;
};

}  // namespace rdf

#endif  // RDF_COMMON_PROCESS_RTD_WATCH_H_
