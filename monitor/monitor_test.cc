#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/config/config.h"
#include "common/events/catalog.h"
#include "common/events/log.h"
#include "common/net/curve_keys.h"
#include "common/testing/free_port.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "monitor/control_access.h"
#include "monitor/metrics.h"
#include "monitor/monitor.h"
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

using ::rdf::testing::FreePort;

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

  EXPECT_OK((*s)->Stop(nullptr, /*held=*/false, "test"));
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

// Ticks `s` for up to `ticks` x 10 ms, until `done` (when given) holds.
void TickFor(Supervisor& s, int ticks, const std::function<bool()>& done = nullptr) {
  for (int i = 0; i < ticks && !(done && done()); ++i) {
    s.Tick();
    absl::SleepFor(absl::Milliseconds(10));
  }
}

TEST_F(MonitorTest, ChildThatOutlivesStopIsReportedAndNotRestartedWhenItExits) {
  absl::StatusOr<std::unique_ptr<Supervisor>> s = Supervisor::Create(
      cfg_, *cfg_.FindNode("b"), {Sleeper("stuck", 0), Sleeper("fine", 1)}, log_.get(),
      absl::Milliseconds(100));
  ASSERT_TRUE(s.ok()) << s.status();
  Supervisor& sup = **s;
  sup.Start();
  const int stuck = Find(sup.Snapshot(), "stuck").pid();
  ASSERT_GT(stuck, 0);
  // Plays a child in an uninterruptible wait: no signal reaches it for now.
  sup.set_signal_sender([stuck](pid_t pid, int sig) { return pid == stuck ? 0 : kill(pid, sig); });

  EXPECT_THAT(sup.Stop(nullptr, /*held=*/false, "test"),
              ::rdf::testing::StatusIs(absl::StatusCode::kDeadlineExceeded,
                                       HasSubstr(absl::StrCat("stuck (pid ", stuck, ")"))));
  EXPECT_EQ(Find(sup.Snapshot(), "stuck").managed_state(), "STOP_FAILED");
  EXPECT_EQ(Find(sup.Snapshot(), "fine").pid(), 0);
  EXPECT_TRUE(sup.AnyRunning());
  EXPECT_FALSE(sup.AllRunning());
  ASSERT_EQ(Events(events::kProcessNotStopped).size(), 1u);
  EXPECT_EQ(Events(events::kProcessNotStopped)[0].fields().at("process"), "stuck");

  // It ends at last: that completes its stop; nothing is restarted, even
  // well past the 0.5 s restart backoff.
  ASSERT_EQ(kill(stuck, SIGKILL), 0);
  TickFor(sup, 300, [&] { return Find(sup.Snapshot(), "stuck").pid() == 0; });
  TickFor(sup, 100);
  EXPECT_EQ(Find(sup.Snapshot(), "stuck").pid(), 0);
  EXPECT_EQ(Find(sup.Snapshot(), "stuck").managed_state(), "STOPPED");
  EXPECT_FALSE(sup.AnyRunning());
  EXPECT_TRUE(Events(events::kProcessDied).empty());
  EXPECT_EQ(Events(events::kProcessStarted).size(), 2u);  // the first start only
}

TEST_F(MonitorTest, StartAfterAFailedStopRunsTheChildAgainOnceTheOldOneExits) {
  absl::StatusOr<std::unique_ptr<Supervisor>> s = Supervisor::Create(
      cfg_, *cfg_.FindNode("b"), {Sleeper("stuck", 0)}, log_.get(), absl::Milliseconds(50));
  ASSERT_TRUE(s.ok()) << s.status();
  Supervisor& sup = **s;
  sup.Start();
  const int stuck = Find(sup.Snapshot(), "stuck").pid();
  sup.set_signal_sender([stuck](pid_t pid, int sig) { return pid == stuck ? 0 : kill(pid, sig); });
  EXPECT_FALSE(sup.Stop(nullptr, /*held=*/false, "test").ok());
  sup.Start();  // the operator starts the set again: one copy at a time
  EXPECT_EQ(Find(sup.Snapshot(), "stuck").pid(), stuck);
  ASSERT_EQ(kill(stuck, SIGKILL), 0);
  TickFor(sup, 300, [&] {
    const proto::ManagedProcess& m = Find(sup.Snapshot(), "stuck");
    return m.managed_state() == "RUNNING" && m.pid() != stuck;
  });
  EXPECT_EQ(Find(sup.Snapshot(), "stuck").managed_state(), "RUNNING");
  EXPECT_NE(Find(sup.Snapshot(), "stuck").pid(), stuck);
}

// The monitor's answer to `rdfcom stop` when a child outlives the stop. The
// set is stand-in scripts (sleep) in a bin folder of the test's own.
TEST_F(MonitorTest, StopReplyNamesTheProcessThatDidNotStop) {
  const std::string bin = dir_ + "/bin";
  std::filesystem::create_directories(bin);
  for (const char* program : {"rdf-receiver", "rdf-updater", "rdf-purger"}) {
    const std::string path = absl::StrCat(bin, "/", program);
    std::ofstream(path) << "#!/bin/sh\nexec sleep 60\n";
    std::filesystem::permissions(path, std::filesystem::perms::owner_all);
  }
  for (const char* node : {"p", "b"}) {
    absl::StatusOr<curve::KeyPair> k = curve::GenerateKeyPair();
    ASSERT_TRUE(k.ok()) << k.status();
    ASSERT_OK(curve::WriteKeyFile(absl::StrCat(dir_, "/keys/", node, ".key"), *k));
  }
  absl::StatusOr<config::Config> c = config::Parse(
      absl::StrCat(kConfig, "monitor { hung_after_ms: 0 }\n"), dir_ + "/rdf.textproto");
  ASSERT_TRUE(c.ok()) << c.status();
  proto::NodeConfig* b = c->proto.mutable_nodes(1);
  b->set_control_port(FreePort());
  std::set<pid_t> stuck;  // plays children in an uninterruptible wait
  MonitorOptions o;
  o.config = &*c;
  o.node = b;
  o.bin_dir = bin;
  o.events = log_.get();
  o.stop_grace = absl::Milliseconds(100);
  o.start = false;
  o.send_signal = [&stuck](pid_t pid, int sig) { return stuck.contains(pid) ? 0 : kill(pid, sig); };
  absl::StatusOr<std::unique_ptr<Monitor>> m = Monitor::Create(o);
  ASSERT_TRUE(m.ok()) << m.status();
  proto::ControlRequest req;
  req.set_version(proto::CONTROL_VERSION_1);
  req.set_command(proto::ControlRequest::START);
  proto::ControlReply started = (*m)->Handle(req);
  ASSERT_TRUE(started.ok()) << started.error();
  const int receiver = Find({started.status().processes().begin(),
                             started.status().processes().end()},
                            "receiver")
                           .pid();
  ASSERT_GT(receiver, 0);
  stuck.insert(receiver);

  req.set_command(proto::ControlRequest::STOP);
  proto::ControlReply r = (*m)->Handle(req);
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(r.error(), HasSubstr(absl::StrCat("did not stop: receiver (pid ", receiver, ")")));
  EXPECT_EQ(r.status().state(), "STOPPING");  // not STOPPED while it lives
  EXPECT_EQ(Find({r.status().processes().begin(), r.status().processes().end()}, "receiver")
                .managed_state(),
            "STOP_FAILED");
  stuck.clear();
  kill(receiver, SIGKILL);
  int st = 0;
  waitpid(receiver, &st, 0);  // the monitor's child; reaped here so the destructor ends
}

class LivenessTest : public MonitorTest {
 protected:
  void StartQuiet(absl::Duration hung_after, absl::Duration restart_after) {
    absl::StatusOr<std::unique_ptr<Supervisor>> s = Supervisor::Create(
        cfg_, *cfg_.FindNode("b"), {Sleeper("quiet", 0)}, log_.get(), absl::Seconds(5));
    ASSERT_TRUE(s.ok()) << s.status();
    sup_ = *std::move(s);
    sup_->set_liveness({hung_after, restart_after});
    sup_->Start();
    pid_ = Find(sup_->Snapshot(), "quiet").pid();
    ASSERT_GT(pid_, 0);
  }
  // The child's status was last published at `published`; judged at `now`.
  std::string StateAt(std::optional<absl::Time> published, absl::Time now) {
    sup_->CheckLiveness([&](const ProcessSpec&) { return published; }, now);
    return Find(sup_->Snapshot(), "quiet").managed_state();
  }
  std::unique_ptr<Supervisor> sup_;
  int pid_ = 0;
};

TEST_F(LivenessTest, StaleStatusIsHungOnceThenKilledAndRestarted) {
  StartQuiet(absl::Milliseconds(200), absl::Milliseconds(400));
  const absl::Time t = absl::Now();
  EXPECT_EQ(StateAt(t, t + absl::Milliseconds(100)), "RUNNING");
  EXPECT_EQ(StateAt(t, t + absl::Milliseconds(250)), "HUNG");
  EXPECT_EQ(StateAt(t, t + absl::Milliseconds(300)), "HUNG");
  EXPECT_FALSE(sup_->AllRunning());
  ASSERT_EQ(Events(events::kProcessHung).size(), 1u);  // once per episode
  EXPECT_EQ(Events(events::kProcessHung)[0].fields().at("status_age_ms"), "250");
  EXPECT_TRUE(Events(events::kHungProcessKilled).empty());

  StateAt(t, t + absl::Milliseconds(450));
  EXPECT_EQ(Events(events::kHungProcessKilled).size(), 1u);
  TickFor(*sup_, 300, [&] {
    const proto::ManagedProcess& m = Find(sup_->Snapshot(), "quiet");
    return m.managed_state() == "RUNNING" && m.pid() != pid_;
  });
  EXPECT_NE(Find(sup_->Snapshot(), "quiet").pid(), pid_);
  EXPECT_EQ(Find(sup_->Snapshot(), "quiet").managed_state(), "RUNNING");
  EXPECT_THAT(Find(sup_->Snapshot(), "quiet").last_exit(), HasSubstr("signal 9"));
  EXPECT_EQ(Events(events::kProcessDied).size(), 1u);
}

TEST_F(LivenessTest, HungChildThatPublishesAgainRunsAndIsNotKilled) {
  StartQuiet(absl::Milliseconds(200), absl::Milliseconds(400));
  const absl::Time t = absl::Now();
  EXPECT_EQ(StateAt(t, t + absl::Milliseconds(300)), "HUNG");
  EXPECT_EQ(StateAt(t + absl::Milliseconds(350), t + absl::Milliseconds(360)), "RUNNING");
  EXPECT_TRUE(sup_->AllRunning());
  EXPECT_EQ(StateAt(t + absl::Milliseconds(350), t + absl::Milliseconds(600)), "HUNG");
  EXPECT_EQ(Events(events::kProcessHung).size(), 2u);  // a second episode
  EXPECT_TRUE(Events(events::kHungProcessKilled).empty());
  EXPECT_EQ(kill(pid_, 0), 0);
}

TEST_F(LivenessTest, ChildThatNeverPublishedIsHungButNotKilled) {
  StartQuiet(absl::Milliseconds(200), absl::Milliseconds(400));
  const absl::Time t = absl::Now();
  // A status file older than this copy is its predecessor's.
  EXPECT_EQ(StateAt(t - absl::Hours(1), t + absl::Seconds(10)), "HUNG");
  EXPECT_EQ(StateAt(std::nullopt, t + absl::Seconds(20)), "HUNG");
  EXPECT_TRUE(Events(events::kHungProcessKilled).empty());
  EXPECT_EQ(kill(pid_, 0), 0);
}

TEST_F(LivenessTest, NoLivenessConfiguredNeverHangs) {
  StartQuiet(absl::ZeroDuration(), absl::ZeroDuration());
  const absl::Time t = absl::Now();
  EXPECT_EQ(StateAt(t, t + absl::Hours(1)), "RUNNING");
}

// The control port's rights, by the key a request came with.
class ControlAccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::rdf::testing::MakeTestDir("control_access_test");
    for (const char* who : {"primary", "backup", "alice"}) {
      absl::StatusOr<curve::KeyPair> k = curve::GenerateKeyPair();
      ASSERT_TRUE(k.ok()) << k.status();
      keys_[who] = k->public_key;
    }
  }
  void TearDown() override { ::rdf::testing::RemoveTestDir(dir_); }
  // A configuration whose nodes have keys; with operator "alice" or none.
  config::Config Load(bool with_operator) {
    std::string text = absl::StrCat(
        "nodes { name: \"primary\" role: PRIMARY host: \"127.0.0.1\" data_dir: \"p\" ",
        "key_file: \"keys/p.key\" public_key: \"", keys_["primary"], "\" }\n",
        "nodes { name: \"backup\" role: BACKUP host: \"127.0.0.1\" audit_port: 17999 ",
        "data_dir: \"b\" key_file: \"keys/b.key\" public_key: \"", keys_["backup"], "\" }\n",
        "volumes { name: \"$DATA01\" }\n");
    if (with_operator) {
      absl::StrAppend(&text, "operators { name: \"alice\" public_key: \"", keys_["alice"],
                      "\" }\n");
    }
    absl::StatusOr<config::Config> c = config::Parse(text, dir_ + "/rdf.textproto");
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : config::Config();
  }
  // Authorize for the key of `who` asking `command` of node `here`.
  absl::Status Ask(const config::Config& c, const std::string& who, const std::string& here,
                   proto::ControlRequest::Command command, uint64_t epoch = 0) {
    return Authorize(c, *c.FindNode(here), IdentifyCaller(c, keys_[who]), command, epoch);
  }
  std::string dir_;
  std::map<std::string, std::string> keys_;
};

TEST_F(ControlAccessTest, KeysAreNamedByWhomTheyBelongTo) {
  config::Config c = Load(true);
  EXPECT_EQ(IdentifyCaller(c, keys_["alice"]).ToString(), "operator alice");
  EXPECT_EQ(IdentifyCaller(c, keys_["backup"]).ToString(), "node backup");
  EXPECT_EQ(IdentifyCaller(c, "").ToString(), "unknown key");
  EXPECT_EQ(ControlPortKeys(c).size(), 3u);
}

TEST_F(ControlAccessTest, NodeKeyCannotStopTheOtherNodeOrStartInitializeThere) {
  for (bool with_operator : {true, false}) {
    config::Config c = Load(with_operator);
    EXPECT_THAT(Ask(c, "primary", "backup", proto::ControlRequest::STOP),
                ::rdf::testing::StatusIs(absl::StatusCode::kPermissionDenied,
                                         HasSubstr("node 'primary' may only read")));
    EXPECT_EQ(Ask(c, "primary", "backup", proto::ControlRequest::INIT_TARGET_BEGIN).code(),
              absl::StatusCode::kPermissionDenied);
    EXPECT_EQ(Ask(c, "backup", "primary", proto::ControlRequest::INIT_SOURCE_BEGIN).code(),
              absl::StatusCode::kPermissionDenied);
    // What the peer monitor and verify legitimately ask.
    EXPECT_OK(Ask(c, "primary", "backup", proto::ControlRequest::STATUS));
    EXPECT_OK(Ask(c, "backup", "primary", proto::ControlRequest::VERIFY_SCAN));
  }
}

TEST_F(ControlAccessTest, OperatorKeyMayStopAndInitializeEitherNode) {
  config::Config c = Load(true);
  for (const char* here : {"primary", "backup"}) {
    EXPECT_OK(Ask(c, "alice", here, proto::ControlRequest::STOP));
    EXPECT_OK(Ask(c, "alice", here, proto::ControlRequest::START));
  }
  EXPECT_OK(Ask(c, "alice", "backup", proto::ControlRequest::INIT_TARGET_BEGIN));
  EXPECT_OK(Ask(c, "alice", "backup", proto::ControlRequest::STOP, /*epoch=*/2));
}

TEST_F(ControlAccessTest, OldPrimaryKeyIsRefusedForStateChangesAfterTakeover) {
  for (bool with_operator : {true, false}) {
    config::Config c = Load(with_operator);
    for (auto command : {proto::ControlRequest::STOP, proto::ControlRequest::START,
                         proto::ControlRequest::INIT_TARGET_BEGIN,
                         proto::ControlRequest::VERIFY_RESULT}) {
      EXPECT_THAT(Ask(c, "primary", "backup", command, /*epoch=*/2),
                  ::rdf::testing::StatusIs(absl::StatusCode::kPermissionDenied,
                                           HasSubstr("takeover epoch 2")));
    }
    EXPECT_OK(Ask(c, "primary", "backup", proto::ControlRequest::STATUS, 2));
  }
}

TEST_F(ControlAccessTest, OwnNodeKeyManagesItsNodeOnlyWhileNoOperatorsAreConfigured) {
  EXPECT_OK(Ask(Load(false), "backup", "backup", proto::ControlRequest::STOP));
  config::Config c = Load(true);
  EXPECT_THAT(Ask(c, "backup", "backup", proto::ControlRequest::STOP),
              ::rdf::testing::StatusIs(absl::StatusCode::kPermissionDenied,
                                       HasSubstr("needs an operator key")));
  EXPECT_OK(Ask(c, "backup", "backup", proto::ControlRequest::STATUS));
}

TEST_F(MonitorTest, MetricsTextCarriesRtdAsnsBacklogAndCounters) {
  proto::NodeStatus s;
  s.set_node("b");
  s.set_role("BACKUP");
  s.set_state("NORMAL");
  (*s.mutable_events_by_severity())["WARNING"] = 3;
  proto::ManagedProcess* m = s.add_processes();
  m->set_name("updater-DATA01");
  m->set_managed_state("HUNG");
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
  proto::ManagedProcess* app = s.add_processes();
  app->set_name("tmf");
  app->set_program("application (tmf)");
  app->set_status_age_ms(200);
  app->mutable_status()->set_process("tmf");
  app->mutable_status()->set_image_bytes(1048576);
  app->mutable_status()->set_spilled_images(12);
  const std::string text = MetricsText(s);
  EXPECT_THAT(text, HasSubstr("rdf_tmf_image_bytes{node=\"b\",process=\"tmf\"} 1048576"));
  EXPECT_THAT(text, HasSubstr("rdf_tmf_spilled_images_total{node=\"b\",process=\"tmf\"} 12"));
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
  EXPECT_THAT(text, HasSubstr("rdf_process_hung{node=\"b\",process=\"updater-DATA01\"} 1"));
  EXPECT_THAT(text, HasSubstr("rdf_process_hung{node=\"b\",process=\"purger\"} 0"));
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
