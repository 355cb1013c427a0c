// Prometheus text metrics of one node, from the monitor's NodeStatus
// (docs/monitor.md lists every metric). Served by prometheus-cpp's Exposer
// (Debian's prometheus-cpp-dev) on the node's metrics_port at /metrics.
#ifndef RDF_MONITOR_METRICS_H_
#define RDF_MONITOR_METRICS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "control.pb.h"
#include "prometheus/metric_family.h"

namespace rdf::monitor {

// The metric families for `status` (pure; the exporter calls it per scrape).
std::vector<prometheus::MetricFamily> MetricFamilies(const proto::NodeStatus& status);

// The families in the Prometheus text format (for tests and logs).
std::string MetricsText(const proto::NodeStatus& status);

class MetricsExporter {
 public:
  // Serves http://host:port/metrics. kUnavailable when it cannot bind.
  static absl::StatusOr<std::unique_ptr<MetricsExporter>> Start(const std::string& host,
                                                                uint32_t port);
  ~MetricsExporter();
  // The status the next scrapes report. Thread-safe.
  void Update(const proto::NodeStatus& status);

  struct Impl;

 private:
  explicit MetricsExporter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rdf::monitor

#endif  // RDF_MONITOR_METRICS_H_
