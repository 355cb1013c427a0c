#include <signal.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/config.h"
#include "common/event_catalog.h"
#include "common/event_log.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "monitor/metrics.h"
#include "monitor/notifier.h"
#include "monitor/supervisor.h"

namespace rdf::monitor {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kConfig[] = R"cfg(system: "test"
nodes { name: "p" role: PRIMARY host: "127.0.0.1" data_dir: "p" key_file: "keys/p.key" }
nodes { name: "b" role: BACKUP host: "127.0.0.1" audit_port: 17999 data_dir: "b"
        key_file: "keys/b.key" }
volumes { name: "$DATA01" }
volumes { name: "$DATA02" }
volumes { name: "$SCRATCH" unprotected: true }
)cfg";

class MonitorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::rdf::testing::MakeTestDir("monitor_test");
    absl::StatusOr<config::Config> c = config::Parse(kConfig, dir_ + "/rdf.textproto");
    ASSERT_TRUE(c.ok()) << c.status();
    cfg_ = *std::move(c);
    events::EventLogOptions eo;
    eo.dir = config::EventDir(*cfg_.FindNode("b"));
    eo.node = "b";
    eo.process = "monitor";
    absl::StatusOr<std::unique_ptr<events::EventLog>> log = events::EventLog::Open(eo);
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = *std::move(log);
  }
  void TearDown() override {
    log_.reset();
    ::rdf::testing::RemoveTestDir(dir_);
  }
  std::vector<proto::Event> Events(uint32_t number) {
    log_->Flush().IgnoreError();
    events::EventFilter f;
    f.number = number;
    absl::StatusOr<std::vector<proto::Event>> e =
        events::ReadEvents(FileSystem::Default(), config::EventDir(*cfg_.FindNode("b")), f);
    return e.ok() ? *e : std::vector<proto::Event>{};
  }
  std::string dir_;
  config::Config cfg_;
  std::unique_ptr<events::EventLog> log_;
};

TEST_F(MonitorTest, ProcessSetOfEachRole) {
  std::vector<std::string> names;
  for (const ProcessSpec& s : ProcessSet(cfg_, *cfg_.FindNode("b"), "/bin")) {
    names.push_back(s.name);
  }
  // Stop order: purger, updaters of the protected volumes, receiver.
  EXPECT_THAT(names, ElementsAre("purger", "updater-DATA01", "updater-DATA02", "receiver"));
  std::vector<ProcessSpec> p = ProcessSet(cfg_, *cfg_.FindNode("p"), "/opt/rdf/bin");
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].name, "extractor");
  EXPECT_THAT(p[0].argv, ElementsAre("/opt/rdf/bin/rdf-extractor", "--config", cfg_.path,
                                     "--node", "p"));
  std::vector<ProcessSpec> b = ProcessSet(cfg_, *cfg_.FindNode("b"), "/bin");
  EXPECT_THAT(b[1].argv, ElementsAre("/bin/rdf-updater", "--config", cfg_.path, "--node", "b",
                                     "--volume", "$DATA01"));
}

TEST_F(MonitorTest, RestartBackoffDoublesToThirtySeconds) {
  EXPECT_EQ(RestartBackoff(1), absl::Milliseconds(500));
  EXPECT_EQ(RestartBackoff(2), absl::Seconds(1));
  EXPECT_EQ(RestartBackoff(3), absl::Seconds(2));
  EXPECT_EQ(RestartBackoff(7), absl::Seconds(30));
  EXPECT_EQ(RestartBackoff(1000), absl::Seconds(30));
}

ProcessSpec Sleeper(const std::string& name, int phase) {
  ProcessSpec s;
  s.name = name;
  s.program = "sleep";
  s.argv = {"/bin/sleep", "60"};
  s.phase = phase;
  return s;
}

const proto::ManagedProcess& Find(const std::vector<proto::ManagedProcess>& all,
                                  const std::string& name) {
  for (const proto::ManagedProcess& m : all) {
    if (m.name() == name) return m;
  }
  static proto::ManagedProcess none;
  return none;
}

TEST_F(MonitorTest, SupervisorRestartsAKilledChildWithBackoffAndStopsInOrder) {
  absl::StatusOr<std::unique_ptr<Supervisor>> s = Supervisor::Create(
      cfg_, *cfg_.FindNode("b"), {Sleeper("a", 0), Sleeper("b", 1)}, log_.get(),
      absl::Seconds(5));
  ASSERT_TRUE(s.ok()) << s.status();
  (*s)->Start();
  std::vector<proto::ManagedProcess> snap = (*s)->Snapshot();
  const int first = Find(snap, "a").pid();
  ASSERT_GT(first, 0);
  EXPECT_EQ(Find(snap, "a").managed_state(), "RUNNING");
  EXPECT_TRUE((*s)->AllRunning());

  ASSERT_EQ(kill(first, SIGKILL), 0);
  // Within the bounded wait the death is seen, then after the 0.5 s backoff
  // a new copy runs.
  int second = 0;
  bool saw_backoff = false;
  for (int i = 0; i < 300 && second == 0; ++i) {
    (*s)->Tick();
    const proto::ManagedProcess& a = Find((*s)->Snapshot(), "a");
    if (a.managed_state() == "BACKOFF") saw_backoff = true;
    if (a.managed_state() == "RUNNING" && a.pid() != first) second = a.pid();
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_TRUE(saw_backoff);
  ASSERT_GT(second, 0);
  snap = (*s)->Snapshot();
  EXPECT_EQ(Find(snap, "a").restarts(), 1u);
  EXPECT_THAT(Find(snap, "a").last_exit(), HasSubstr("signal 9"));
  EXPECT_EQ(Events(events::kProcessDied).size(), 1u);
  EXPECT_EQ(Events(events::kProcessStarted).size(), 3u);  // a, b, a again

  (*s)->Stop(nullptr, /*held=*/false, "test");
  snap = (*s)->Snapshot();
  EXPECT_EQ(Find(snap, "a").managed_state(), "STOPPED");
  EXPECT_EQ(Find(snap, "a").pid(), 0);
  EXPECT_FALSE((*s)->AnyRunning());
  EXPECT_EQ(kill(second, 0), -1);  // gone
  std::vector<proto::Event> stopped = Events(events::kProcessStopped);
  ASSERT_EQ(stopped.size(), 2u);
  EXPECT_EQ(stopped[0].fields().at("process"), "a");  // phase 0 first
  EXPECT_EQ(stopped[1].fields().at("process"), "b");
  // A stopped process is not restarted.
  for (int i = 0; i < 10; ++i) (*s)->Tick();
  EXPECT_EQ(Find((*s)->Snapshot(), "a").pid(), 0);
}

TEST_F(MonitorTest, GateHoldsProcessesInsteadOfRestartingThem) {
  absl::StatusOr<std::unique_ptr<Supervisor>> s = Supervisor::Create(
      cfg_, *cfg_.FindNode("b"), {Sleeper("held", 0)}, log_.get(), absl::Seconds(5));
  ASSERT_TRUE(s.ok()) << s.status();
  bool allow = true;
  (*s)->set_gate([&](const ProcessSpec&) { return allow; });
  (*s)->Start();
  const int pid = Find((*s)->Snapshot(), "held").pid();
  ASSERT_GT(pid, 0);
  allow = false;
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  std::string state;
  for (int i = 0; i < 300 && state != "HELD"; ++i) {
    (*s)->Tick();
    state = Find((*s)->Snapshot(), "held").managed_state();
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(state, "HELD");
  allow = true;
  (*s)->Start();
  EXPECT_EQ(Find((*s)->Snapshot(), "held").managed_state(), "RUNNING");
}

TEST_F(MonitorTest, MetricsTextCarriesRtdAsnsBacklogAndCounters) {
  proto::NodeStatus s;
  s.set_node("b");
  s.set_role("BACKUP");
  s.set_state("NORMAL");
  (*s.mutable_events_by_severity())["WARNING"] = 3;
  proto::ManagedProcess* m = s.add_processes();
  m->set_name("updater-DATA01");
  m->set_program("rdf-updater");
  m->set_pid(42);
  m->set_restarts(2);
  m->set_status_age_ms(100);
  proto::ProcessStatus* st = m->mutable_status();
  st->set_rtd_ms(1500);
  st->set_applied_asn(123456);
  st->set_backlog_records(7);
  st->set_backlog_bytes(700);
  st->set_fsyncs(9);
  proto::ManagedProcess* dead = s.add_processes();
  dead->set_name("purger");
  dead->set_status_age_ms(-1);
  const std::string text = MetricsText(s);
  EXPECT_THAT(text, HasSubstr("# TYPE rdf_rtd_seconds gauge"));
  EXPECT_THAT(text, HasSubstr("rdf_rtd_seconds{node=\"b\",process=\"updater-DATA01\"} 1.5"));
  EXPECT_THAT(text, HasSubstr("rdf_applied_asn{node=\"b\",process=\"updater-DATA01\"} 123456"));
  EXPECT_THAT(text, HasSubstr("rdf_backlog_bytes{node=\"b\",process=\"updater-DATA01\"} 700"));
  EXPECT_THAT(text, HasSubstr("# TYPE rdf_process_restarts_total counter"));
  EXPECT_THAT(text,
              HasSubstr("rdf_process_restarts_total{node=\"b\",process=\"updater-DATA01\"} 2"));
  EXPECT_THAT(text, HasSubstr("rdf_fsyncs_total{node=\"b\",process=\"updater-DATA01\"} 9"));
  EXPECT_THAT(text, HasSubstr("rdf_events_total{node=\"b\",severity=\"WARNING\"} 3"));
  EXPECT_THAT(text, HasSubstr("rdf_process_up{node=\"b\",process=\"purger\"} 0"));
  EXPECT_FALSE(absl::StrContains(text, "rdf_rtd_seconds{node=\"b\",process=\"purger\"}"));
}

TEST_F(MonitorTest, NotifierRunsTheCommandWithTheEventOnStdinAndReportsFailures) {
  const std::string out = dir_ + "/notified.json";
  {
    Notifier n(absl::StrCat("cat >> ", out), proto::ERROR, log_.get());
    proto::Event info, error;
    info.set_number(920);
    info.set_severity(proto::INFO);
    error.set_number(921);
    error.set_severity(proto::ERROR);
    error.set_text("process died");
    n.Offer(info);   // below the minimum: not run
    n.Offer(error);
    for (int i = 0; i < 500 && n.runs() < 1; ++i) absl::SleepFor(absl::Milliseconds(10));
    EXPECT_EQ(n.runs(), 1u);
    EXPECT_EQ(n.failures(), 0u);
  }
  std::ifstream f(out);
  std::string line;
  ASSERT_TRUE(std::getline(f, line));
  EXPECT_THAT(line, HasSubstr("\"number\":921"));
  EXPECT_FALSE(std::getline(f, line));  // exactly one event

  EXPECT_EQ(Notifier::RunOnce("exit 3", "{}\n", absl::Seconds(5)), "exit status 3");
  EXPECT_THAT(Notifier::RunOnce("sleep 5", "{}\n", absl::Milliseconds(200)),
              HasSubstr("timed out"));
  {
    Notifier n("exit 1", proto::ERROR, log_.get());
    proto::Event e;
    e.set_number(921);
    e.set_severity(proto::CRITICAL);
    n.Offer(e);
    for (int i = 0; i < 500 && n.runs() < 1; ++i) absl::SleepFor(absl::Milliseconds(10));
    EXPECT_EQ(n.failures(), 1u);
  }
  EXPECT_EQ(Events(events::kNotifyFailed).size(), 1u);
}

}  // namespace
}  // namespace rdf::monitor
