#include "common/base/subprocess.h"

#include <signal.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/base/file_system.h"

namespace rdf {

std::string ExecutableDir() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  return DirName(std::string_view(buf, static_cast<size_t>(n)));
}

absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv, bool die_with_parent,
                            bool quiet_stdout) {
  if (argv.empty()) return absl::InvalidArgumentError("Spawn: empty argv");
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  if (pid == 0) {
    if (die_with_parent) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);  // the parent died already
    }
    if (quiet_stdout) {
      int fd = open("/dev/null", O_WRONLY);
      if (fd >= 0) dup2(fd, STDOUT_FILENO);
    }
    execv(args[0], args.data());
    std::fprintf(stderr, "cannot run %s: %s\n", args[0], std::strerror(errno));
    _exit(127);
  }
  return pid;
}

std::string ExitInfo::ToString() const {
  if (signal != 0) return absl::StrCat("killed by signal ", signal, " (", strsignal(signal), ")");
  return absl::StrCat("exit status ", code);
}

std::optional<ExitInfo> WaitChild(pid_t pid, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    int st = 0;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) {
      ExitInfo e;
      if (WIFEXITED(st)) e.code = WEXITSTATUS(st);
      if (WIFSIGNALED(st)) e.signal = WTERMSIG(st);
      return e;
    }
    if (r < 0 && errno != EINTR) return ExitInfo{127, 0};  // not our child
    if (absl::Now() >= deadline) return std::nullopt;
    absl::SleepFor(absl::Milliseconds(10));
  }
}

bool ProcessAlive(pid_t pid) { return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM); }

bool TerminateProcess(pid_t pid, absl::Duration grace, const std::function<bool()>& gone) {
  for (int sig : {SIGTERM, SIGKILL}) {
    if (gone()) return true;
    kill(pid, sig);
    absl::Time deadline = absl::Now() + grace;
    while (absl::Now() < deadline) {
      waitpid(pid, nullptr, WNOHANG);  // reap it if it is our child
      if (gone()) return true;
      absl::SleepFor(absl::Milliseconds(10));
    }
  }
  return gone();
}

}  // namespace rdf
