// breaks: fs must not see the daemon.
#include "nydus/daemon/daemon.h"
