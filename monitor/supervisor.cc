#include "monitor/supervisor.h"

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/subprocess.h"
#include "common/events/catalog.h"
#include "common/process/lock.h"

namespace rdf::monitor {
namespace {

// A process that dies this often within kCrashWindow is in a crash loop.
constexpr int kCrashLoopDeaths = 5;
constexpr absl::Duration kCrashWindow = absl::Minutes(5);
// A process that ran this long has recovered: its backoff starts over.
constexpr absl::Duration kHealthyRun = absl::Seconds(60);

std::string ExitText(int status) {
  ExitInfo e;
  if (WIFEXITED(status)) e.code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) e.signal = WTERMSIG(status);
  return e.ToString();
}

}  // namespace

std::vector<ProcessSpec> ProcessSet(const config::Config& config, const proto::NodeConfig& node,
                                    const std::string& bin_dir) {
  auto make = [&](std::string name, std::string program, std::string volume, int phase) {
    ProcessSpec s;
    s.name = std::move(name);
    s.program = std::move(program);
    s.volume = std::move(volume);
    s.phase = phase;
    s.argv = {absl::StrCat(bin_dir, "/", s.program), "--config", config.path, "--node",
              node.name()};
    if (!s.volume.empty()) s.argv.insert(s.argv.end(), {"--volume", s.volume});
    return s;
  };
  std::vector<ProcessSpec> set;
  if (node.role() == proto::PRIMARY) {
    set.push_back(make("extractor", "rdf-extractor", "", 0));
    return set;
  }
  set.push_back(make("purger", "rdf-purger", "", 0));
  for (const proto::VolumeConfig* v : config.ProtectedVolumes()) {
    set.push_back(
        make(absl::StrCat("updater-", config::VolumeDirName(v->name())), "rdf-updater", v->name(), 1));
  }
  set.push_back(make("receiver", "rdf-receiver", "", 2));
  return set;
}

absl::Duration RestartBackoff(uint32_t deaths) {
  absl::Duration d = absl::Milliseconds(500);
  for (uint32_t i = 1; i < deaths && d < absl::Seconds(30); ++i) d *= 2;
  return std::min(d, absl::Seconds(30));
}

Supervisor::Supervisor(const config::Config&, const proto::NodeConfig& node,
                       events::EventLog* events, absl::Duration grace)
    : lock_dir_(config::LockDir(node)), events_(events), grace_(grace) {}

absl::StatusOr<std::unique_ptr<Supervisor>> Supervisor::Create(const config::Config& config,
                                                               const proto::NodeConfig& node,
                                                               std::vector<ProcessSpec> specs,
                                                               events::EventLog* events,
                                                               absl::Duration grace) {
  std::unique_ptr<Supervisor> s(new Supervisor(config, node, events, grace));
  for (ProcessSpec& spec : specs) {
    const int pid = ProcessLock::HolderPid(s->lock_dir_, spec.name);
    if (pid != 0) {
      const std::string lock_dir = s->lock_dir_, name = spec.name;
      const bool gone = TerminateProcess(
          pid, grace, [&] { return ProcessLock::HolderPid(lock_dir, name) == 0; });
      if (!gone) {
        return absl::FailedPreconditionError(absl::StrCat(
            "a leftover ", spec.name, " (pid ", pid, ") holds ", lock_dir, "/", spec.name,
            ".lock and did not end on SIGTERM or SIGKILL"));
      }
      events->Log(events::kProcessStopped, {{"process", spec.name},
                                            {"pid", absl::StrCat(pid)},
                                            {"reason", "leftover from an earlier monitor"}});
    }
    Child c;
    c.spec = std::move(spec);
    s->children_.push_back(std::move(c));
  }
  return s;
}

Supervisor::~Supervisor() {
  for (Child& c : children_) {
    if (c.pid > 0) {
      kill(c.pid, SIGKILL);
      int st = 0;
      waitpid(c.pid, &st, 0);
    }
  }
}

void Supervisor::Launch(Child& c) {
  absl::StatusOr<pid_t> pid = Spawn(c.spec.argv, /*die_with_parent=*/true);
  if (!pid.ok()) {
    events_->Log(events::kProcessStartFailed,
                 {{"process", c.spec.name}, {"error", std::string(pid.status().message())}});
    ++c.deaths_in_a_row;
    c.state = "BACKOFF";
    c.next_start = absl::Now() + RestartBackoff(c.deaths_in_a_row);
    return;
  }
  c.pid = *pid;
  c.state = "RUNNING";
  c.started = absl::Now();
  events_->Log(events::kProcessStarted, {{"process", c.spec.name},
                                         {"program", c.spec.program},
                                         {"pid", absl::StrCat(c.pid)},
                                         {"attempt", absl::StrCat(c.restarts + 1)}});
}

void Supervisor::Reap() {
  // Each child by pid (not waitpid(-1): the notifier's children are not ours).
  for (Child& c : children_) {
    if (c.pid <= 0) continue;
    int st = 0;
    const pid_t pid = waitpid(c.pid, &st, WNOHANG);
    if (pid == 0 || (pid < 0 && errno != ECHILD)) continue;
    c.pid = 0;
    c.last_exit = pid > 0 ? ExitText(st) : "gone";
    if (c.state == "STOPPED" || c.state == "HELD") {
      ReapStopped(c, pid);
      continue;
    }
    if (gate_ && !gate_(c.spec)) {
      // Stopped on purpose by someone else (a takeover stops the updaters):
      // not a death, and not restarted.
      c.state = "HELD";
      events_->Log(events::kProcessStopped, {{"process", c.spec.name},
                                             {"pid", absl::StrCat(pid)},
                                             {"exit", c.last_exit},
                                             {"reason", "held (takeover or update stop)"}});
      continue;
    }
    c.hung_killed = false;
    const absl::Time now = absl::Now();
    if (now - c.started >= kHealthyRun) c.deaths_in_a_row = 0;
    ++c.deaths_in_a_row;
    ++c.restarts;
    const absl::Duration delay = RestartBackoff(c.deaths_in_a_row);
    c.state = "BACKOFF";
    c.next_start = now + delay;
    events_->Log(events::kProcessDied,
                 {{"process", c.spec.name},
                  {"pid", absl::StrCat(pid)},
                  {"exit", c.last_exit},
                  {"restart_in_ms", absl::StrCat(absl::ToInt64Milliseconds(delay))}});
    c.recent_deaths.push_back(now);
    std::erase_if(c.recent_deaths, [&](absl::Time t) { return now - t > kCrashWindow; });
    if (static_cast<int>(c.recent_deaths.size()) >= kCrashLoopDeaths) {
      if (!c.crash_loop_reported) {
        events_->Log(events::kProcessCrashLoop,
                     {{"process", c.spec.name},
                      {"deaths", absl::StrCat(c.recent_deaths.size())},
                      {"within", absl::FormatDuration(kCrashWindow)},
                      {"last_exit", c.last_exit}});
        c.crash_loop_reported = true;
      }
    } else {
      c.crash_loop_reported = false;
    }
  }
}

void Supervisor::ReapStopped(Child& c, pid_t pid) {
  // It was asked to stop (and may have outlived Stop in an uninterruptible
  // wait): its exit now is the stop completing, not a death to restart.
  events_->Log(events::kProcessStopped,
               {{"process", c.spec.name},
                {"pid", absl::StrCat(pid)},
                {"exit", c.last_exit},
                {"reason", c.stop_failed ? "exited after its stop had failed"
                                         : "exited while stopped"}});
  c.stop_failed = false;
  c.hung_killed = false;
}

void Supervisor::Tick() {
  Reap();
  const absl::Time now = absl::Now();
  for (Child& c : children_) {
    // pid > 0: one that outlived Stop and was started again still runs.
    if (c.state != "BACKOFF" || now < c.next_start || c.pid > 0) continue;
    if (gate_ && !gate_(c.spec)) {
      c.state = "HELD";
      continue;
    }
    Launch(c);
  }
}

void Supervisor::Start(const std::function<bool(const ProcessSpec&)>& which) {
  Reap();
  // Reverse stop order: the receiver first, the purger last.
  std::vector<Child*> order;
  for (Child& c : children_) order.push_back(&c);
  std::stable_sort(order.begin(), order.end(),
                   [](const Child* a, const Child* b) { return a->spec.phase > b->spec.phase; });
  for (Child* c : order) {
    if (which && !which(c->spec)) continue;
    c->deaths_in_a_row = 0;
    if (c->pid != 0) {
      if (c->stop_failed) {
        // Still ending from an earlier Stop: start it anew once it exits
        // (Reap counts that exit as a death, Tick relaunches).
        c->stop_failed = false;
        c->state = "BACKOFF";
        c->next_start = absl::Now();
      }
      continue;
    }
    if (gate_ && !gate_(c->spec)) {
      c->state = "HELD";
      continue;
    }
    Launch(*c);
  }
}

absl::Status Supervisor::Stop(const std::function<bool(const ProcessSpec&)>& which, bool held,
                              const std::string& reason) {
  Reap();
  std::vector<std::string> survivors;
  int max_phase = 0;
  for (const Child& c : children_) max_phase = std::max(max_phase, c.spec.phase);
  for (int phase = 0; phase <= max_phase; ++phase) {
    std::vector<Child*> batch;
    for (Child& c : children_) {
      if (c.spec.phase != phase || (which && !which(c.spec))) continue;
      c.state = held ? "HELD" : "STOPPED";
      if (c.pid > 0) {
        send_signal_(c.pid, SIGTERM);
        batch.push_back(&c);
      }
    }
    // Wait for this phase to end (all of it in parallel), then SIGKILL.
    for (int round = 0; round < 2 && !batch.empty(); ++round) {
      const absl::Time deadline = absl::Now() + grace_;
      while (!batch.empty() && absl::Now() < deadline) {
        for (auto it = batch.begin(); it != batch.end();) {
          int st = 0;
          const pid_t r = waitpid((*it)->pid, &st, WNOHANG);
          if (r == (*it)->pid || (r < 0 && errno == ECHILD)) {
            Child& c = **it;
            c.last_exit = r > 0 ? ExitText(st) : "";
            events_->Log(events::kProcessStopped, {{"process", c.spec.name},
                                                   {"pid", absl::StrCat(c.pid)},
                                                   {"exit", c.last_exit},
                                                   {"reason", reason}});
            c.pid = 0;
            c.stop_failed = false;
            c.hung_killed = false;
            it = batch.erase(it);
          } else {
            ++it;
          }
        }
        if (!batch.empty()) absl::SleepFor(absl::Milliseconds(20));
      }
      if (round == 0) {
        for (Child* c : batch) send_signal_(c->pid, SIGKILL);
      }
    }
    for (Child* c : batch) {
      // Alive a grace after SIGKILL: stuck in the kernel (an uninterruptible
      // fsync, a hung NFS mount). Say so; Reap will not restart it.
      c->stop_failed = true;
      events_->Log(events::kProcessNotStopped,
                   {{"process", c->spec.name},
                    {"pid", absl::StrCat(c->pid)},
                    {"waited_ms", absl::StrCat(absl::ToInt64Milliseconds(2 * grace_))},
                    {"reason", reason}});
      survivors.push_back(absl::StrCat(c->spec.name, " (pid ", c->pid, ")"));
    }
  }
  if (survivors.empty()) return absl::OkStatus();
  return absl::DeadlineExceededError(absl::StrCat(
      absl::StrJoin(survivors, ", "), survivors.size() == 1 ? " is" : " are",
      " still running ", absl::FormatDuration(2 * grace_),
      " after SIGTERM and SIGKILL (stuck in the kernel, e.g. an uninterruptible fsync); "
      "not restarted when it exits (event 929)"));
}

void Supervisor::CheckLiveness(const LastPublished& last_published, absl::Time now) {
  if (liveness_.hung_after <= absl::ZeroDuration()) return;
  for (Child& c : children_) {
    if (c.pid <= 0 || (c.state != "RUNNING" && c.state != "HUNG") || c.hung_killed) continue;
    std::optional<absl::Time> published = last_published(c.spec);
    // A status file older than this copy is its predecessor's.
    if (published.has_value() && *published < c.started) published.reset();
    JudgeLiveness(c, published, now);
  }
}

void Supervisor::JudgeLiveness(Child& c, std::optional<absl::Time> published, absl::Time now) {
  const absl::Duration age = now - published.value_or(c.started);
  if (age < liveness_.hung_after) {
    if (c.state == "HUNG") c.state = "RUNNING";  // publishes again: the episode ends
    return;
  }
  const absl::Duration restart = liveness_.restart_after;
  const bool kill_it = restart > absl::ZeroDuration() && published.has_value() && age >= restart;
  if (c.state != "HUNG") {
    c.state = "HUNG";
    events_->Log(events::kProcessHung,
                 {{"process", c.spec.name},
                  {"pid", absl::StrCat(c.pid)},
                  {"status_age_ms", absl::StrCat(absl::ToInt64Milliseconds(age))},
                  {"restart_in_ms", restart > absl::ZeroDuration() && published.has_value()
                                        ? absl::StrCat(absl::ToInt64Milliseconds(
                                              std::max(absl::ZeroDuration(), restart - age)))
                                        : "-1"}});
  }
  if (!kill_it) return;
  // Reap sees the SIGKILL as a death (921) and Tick restarts it with backoff.
  c.hung_killed = true;
  send_signal_(c.pid, SIGKILL);
  events_->Log(events::kHungProcessKilled,
               {{"process", c.spec.name},
                {"pid", absl::StrCat(c.pid)},
                {"status_age_ms", absl::StrCat(absl::ToInt64Milliseconds(age))}});
}

bool Supervisor::AllRunning() const {
  return std::all_of(children_.begin(), children_.end(), [](const Child& c) {
    if (c.stop_failed) return false;  // asked to stop, and did not
    return c.state == "RUNNING" || c.state == "STOPPED" || c.state == "HELD";
  });
}

bool Supervisor::AnyRunning() const {
  return std::any_of(children_.begin(), children_.end(),
                     [](const Child& c) { return c.pid > 0; });
}

std::vector<proto::ManagedProcess> Supervisor::Snapshot() const {
  const absl::Time now = absl::Now();
  std::vector<proto::ManagedProcess> out;
  for (const Child& c : children_) {
    proto::ManagedProcess m;
    m.set_name(c.spec.name);
    m.set_program(c.spec.program);
    m.set_volume(c.spec.volume);
    m.set_managed_state(c.stop_failed ? "STOP_FAILED" : c.state);
    m.set_pid(c.pid);
    m.set_restarts(c.restarts);
    m.set_last_exit(c.last_exit);
    m.set_uptime_ms(c.pid > 0 ? absl::ToInt64Milliseconds(now - c.started) : 0);
    m.set_next_start_in_ms(
        c.state == "BACKOFF" ? std::max<int64_t>(0, absl::ToInt64Milliseconds(c.next_start - now))
                             : 0);
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace rdf::monitor
