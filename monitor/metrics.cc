#include "monitor/metrics.h"

#include <exception>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/client_metric.h"
#include "prometheus/collectable.h"
#include "prometheus/exposer.h"
#include "prometheus/text_serializer.h"

namespace rdf::monitor {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<std::pair<std::string, std::string>>;

// Builds families by name, in first-use order.
class Families {
 public:
  void Add(const std::string& name, MetricType type, const std::string& help,
           const Labels& labels, double value) {
    auto it = index_.find(name);
    if (it == index_.end()) {
      it = index_.emplace(name, out_.size()).first;
      MetricFamily f;
      f.name = name;
      f.help = help;
      f.type = type;
      out_.push_back(std::move(f));
    }
    ClientMetric m;
    for (const auto& [k, v] : labels) m.label.push_back({k, v});
    if (type == MetricType::Counter) {
      m.counter.value = value;
    } else {
      m.gauge.value = value;
    }
    out_[it->second].metric.push_back(std::move(m));
  }
  std::vector<MetricFamily> Take() { return std::move(out_); }

 private:
  std::map<std::string, size_t> index_;
  std::vector<MetricFamily> out_;
};

constexpr MetricType kGauge = MetricType::Gauge;
constexpr MetricType kCounter = MetricType::Counter;

}  // namespace

std::vector<MetricFamily> MetricFamilies(const proto::NodeStatus& s) {
  Families f;
  const Labels node = {{"node", s.node()}};
  f.Add("rdf_monitor_up", kGauge, "1 while the node's monitor runs", node, 1);
  f.Add("rdf_node_state", kGauge, "1 for the node's current state", {{"node", s.node()},
        {"state", s.state()}}, 1);
  if (s.role() == "PRIMARY") {
    f.Add("rdf_audit_end_asn", kGauge, "ASN of the newest durable audit record on the primary",
          node, static_cast<double>(s.audit_end_asn()));
  }
  for (const auto& [sev, n] : s.events_by_severity()) {
    f.Add("rdf_events_total", kCounter, "EMS events logged on the node since the monitor started",
          {{"node", s.node()}, {"severity", sev}}, static_cast<double>(n));
  }
  for (const proto::ManagedProcess& p : s.processes()) {
    const Labels l = {{"node", s.node()}, {"process", p.name()}};
    const proto::ProcessStatus& st = p.status();
    f.Add("rdf_process_up", kGauge, "1 when the process runs", l, p.pid() > 0 ? 1 : 0);
    f.Add("rdf_process_hung", kGauge,
          "1 while the process runs but its status is older than monitor.hung_after_ms", l,
          p.managed_state() == "HUNG" ? 1 : 0);
    f.Add("rdf_process_stalled", kGauge,
          "1 while the process's position stands for monitor.stall_after_ms while work waits "
          "for it (event 995)",
          l, p.stalled_ms() > 0 ? 1 : 0);
    f.Add("rdf_process_restarts_total", kCounter,
          "unexpected deaths of the process since the monitor started", l, p.restarts());
    if (p.status_age_ms() < 0) continue;  // no status published yet
    f.Add("rdf_status_age_seconds", kGauge, "age of the process's last published status", l,
          p.status_age_ms() / 1000.0);
    if (st.rtd_ms() >= 0) {
      f.Add("rdf_rtd_seconds", kGauge,
            "relative time delay: how far the process's work lags the primary's audit", l,
            st.rtd_ms() / 1000.0);
    }
    f.Add("rdf_position_asn", kGauge, "ASN of the process's current position", l,
          static_cast<double>(st.position().asn()));
    if (p.program() == "rdf-extractor") {
      f.Add("rdf_sent_asn", kGauge, "extractor: highest ASN sent", l,
            static_cast<double>(st.sent_asn()));
      f.Add("rdf_acked_asn", kGauge, "extractor: highest ASN acknowledged by the receiver", l,
            static_cast<double>(st.acked_asn()));
    }
    if (p.program() == "rdf-receiver") {
      f.Add("rdf_save_point_asn", kGauge, "receiver: ASN of the last save point", l,
            static_cast<double>(st.save_point_asn()));
    }
    if (p.program() == "rdf-updater") {
      f.Add("rdf_applied_asn", kGauge, "updater: ASN applied through", l,
            static_cast<double>(st.applied_asn()));
      f.Add("rdf_backlog_records", kGauge, "updater: records received but not yet applied", l,
            static_cast<double>(st.backlog_records()));
      f.Add("rdf_backlog_bytes", kGauge, "updater: bytes received but not yet applied", l,
            static_cast<double>(st.backlog_bytes()));
    }
    if (st.last_progress_age_ms() >= 0) {
      f.Add("rdf_last_progress_age_seconds", kGauge, "time since the process last made progress",
            l, st.last_progress_age_ms() / 1000.0);
    }
    f.Add("rdf_batches_total", kCounter, "batches sent, received or applied", l,
          static_cast<double>(st.batches()));
    f.Add("rdf_fsyncs_total", kCounter, "fsync/fdatasync calls", l,
          static_cast<double>(st.fsyncs()));
    f.Add("rdf_records_total", kCounter, "records sent, received or applied", l,
          static_cast<double>(st.records()));
    f.Add("rdf_bytes_total", kCounter, "bytes sent, received or applied", l,
          static_cast<double>(st.bytes()));
    for (const proto::TrailUsage& t : st.trails()) {
      const Labels tl = {{"node", s.node()}, {"trail", t.name()}};
      f.Add("rdf_trail_bytes", kGauge, "bytes of an image trail on disk", tl,
            static_cast<double>(t.bytes()));
      f.Add("rdf_trail_segments", kGauge, "segments of an image trail on disk", tl,
            static_cast<double>(t.segments()));
    }
    if (st.process() == "tmf") {
      f.Add("rdf_tmf_image_bytes", kGauge,
            "tmf: change images held in memory (bounded by tmf.image_memory_bytes)", l,
            static_cast<double>(st.image_bytes()));
      f.Add("rdf_tmf_spilled_images_total", kCounter,
            "tmf: changes whose images were left in the audit trail and read back when needed",
            l, static_cast<double>(st.spilled_images()));
    }
    if (p.program() == "rdf-purger") {
      f.Add("rdf_purged_segments_total", kCounter, "image trail segments purged", l,
            static_cast<double>(st.purged_segments()));
    }
  }
  return f.Take();
}

std::string MetricsText(const proto::NodeStatus& status) {
  return prometheus::TextSerializer().Serialize(MetricFamilies(status));
}

namespace {

class StatusCollectable : public prometheus::Collectable {
 public:
  std::vector<MetricFamily> Collect() const override {
    absl::MutexLock l(&mu_);
    return MetricFamilies(status_);
  }
  void Update(const proto::NodeStatus& s) {
    absl::MutexLock l(&mu_);
    status_ = s;
  }

 private:
  mutable absl::Mutex mu_;
  proto::NodeStatus status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

struct MetricsExporter::Impl {
  std::unique_ptr<prometheus::Exposer> exposer;
  std::shared_ptr<StatusCollectable> collectable = std::make_shared<StatusCollectable>();
};

MetricsExporter::MetricsExporter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MetricsExporter::~MetricsExporter() = default;

absl::StatusOr<std::unique_ptr<MetricsExporter>> MetricsExporter::Start(const std::string& host,
                                                                        uint32_t port) {
  auto impl = std::make_unique<Impl>();
  try {
    impl->exposer = std::make_unique<prometheus::Exposer>(absl::StrCat(host, ":", port), 1);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", host, ":", port, ": ", e.what()));
  }
  impl->exposer->RegisterCollectable(impl->collectable);
  return std::unique_ptr<MetricsExporter>(new MetricsExporter(std::move(impl)));
}

void MetricsExporter::Update(const proto::NodeStatus& status) {
  impl_->collectable->Update(status);
}

}  // namespace rdf::monitor
