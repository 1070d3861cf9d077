// The receiving half of a supervisor transfer (contract §6.3) apart from the
// connect, so that the parsing of what a supervisor sends (the bytes up to
// EOF, the descriptors in the control data) can be driven over any socket,
// e.g. a socketpair in fuzz/supervisor_receive_fuzz.cc. Private to daemon/.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <vector>

#include "nydus/daemon/supervisor.h"

namespace nydus::daemon {

// Every descriptor in the SCM_RIGHTS blocks of `msg`'s control data, in
// order. Headers are read only within msg_controllen: a block whose length
// runs past the buffer (or is shorter than a header) ends the walk. The
// caller owns the descriptors.
std::vector<int> scm_rights_fds(const msghdr& msg);

// Reads bytes and descriptors from the connected socket `sock` until EOF:
// keeps the first descriptor, closes every other one, refuses more than
// `max_bytes`. Errors as receive_from_supervisor (Read / Timeout /
// NoEnoughFds / TooLarge); every descriptor received is closed on error.
Result<SupervisorTransfer> receive_transfer(int sock, std::chrono::steady_clock::time_point deadline,
                                            std::size_t max_bytes);

}  // namespace nydus::daemon
