// breaks: storage must not see the api model.
#include "nydus/api/types.h"
