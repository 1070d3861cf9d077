// breaks: the HTTP transport knows no routes.
#include "nydus/api/router.h"
