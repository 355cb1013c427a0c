#include "monitor/notifier.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <mutex>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/base/subprocess.h"
#include "common/events/catalog.h"

namespace rdf::monitor {

Notifier::Notifier(std::string command, proto::Severity min_severity, events::EventLog* log,
                   absl::Duration timeout, size_t max_queue)
    : command_(std::move(command)),
      min_severity_(min_severity),
      log_(log),
      timeout_(timeout),
      max_queue_(max_queue),
      thread_([this] { Loop(); }) {}

Notifier::~Notifier() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void Notifier::Offer(const proto::Event& event) {
  if (event.severity() < min_severity_ || event.number() == events::kNotifyFailed) return;
  absl::MutexLock l(&mu_);
  queue_.push_back(event);
  while (queue_.size() > max_queue_) {
    queue_.pop_front();
    ++dropped_;
  }
}

uint64_t Notifier::runs() const {
  absl::MutexLock l(&mu_);
  return runs_;
}
uint64_t Notifier::failures() const {
  absl::MutexLock l(&mu_);
  return failures_;
}
uint64_t Notifier::dropped() const {
  absl::MutexLock l(&mu_);
  return dropped_;
}

void Notifier::Loop() {
  for (;;) {
    proto::Event e;
    {
      absl::MutexLock l(&mu_);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stop_ || !queue_.empty(); };
      mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Milliseconds(500));
      if (queue_.empty()) {
        if (stop_) return;
        continue;
      }
      e = std::move(queue_.front());
      queue_.pop_front();
    }
    const std::string problem = RunOnce(command_, events::EventToJson(e) + "\n", timeout_);
    absl::MutexLock l(&mu_);
    ++runs_;
    if (!problem.empty()) {
      ++failures_;
      log_->Log(events::kNotifyFailed, {{"command", command_},
                                        {"event", absl::StrCat(e.number())},
                                        {"error", problem}});
    }
  }
}

std::string Notifier::RunOnce(const std::string& command, const std::string& input,
                              absl::Duration timeout) {
  // A command that exits without reading its input must not kill us with
  // SIGPIPE: the write below then fails with EPIPE, which is fine.
  static std::once_flag ignore_sigpipe;
  std::call_once(ignore_sigpipe, [] { std::signal(SIGPIPE, SIG_IGN); });
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return absl::StrCat("pipe: ", std::strerror(errno));
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return absl::StrCat("fork: ", std::strerror(errno));
  }
  if (pid == 0) {
    dup2(fds[0], STDIN_FILENO);
    const int null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, STDOUT_FILENO);
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[0]);
  // A command that does not read its input must not block us: write what
  // fits (an event is far below the pipe's 64 KiB).
  fcntl(fds[1], F_SETFL, O_NONBLOCK);
  ssize_t w = write(fds[1], input.data(), input.size());
  (void)w;
  close(fds[1]);
  std::optional<ExitInfo> exit = WaitChild(pid, timeout);
  if (!exit.has_value()) {
    kill(pid, SIGKILL);
    WaitChild(pid, absl::Seconds(5));
    return absl::StrCat("timed out after ", absl::FormatDuration(timeout));
  }
  return exit->ok() ? "" : exit->ToString();
}

}  // namespace rdf::monitor
