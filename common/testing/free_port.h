// A loopback TCP port that was free a moment ago, for tests that bind real
// sockets (the kernel picks it; another process may take it before the test
// binds, which is rare enough for unit tests).
#ifndef RDF_COMMON_TESTING_FREE_PORT_H_
#define RDF_COMMON_TESTING_FREE_PORT_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace rdf::testing {

inline int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

}  // namespace rdf::testing

#endif  // RDF_COMMON_TESTING_FREE_PORT_H_
