// fine: fs on storage and common.
#include "nydus/result.h"
#include "nydus/storage/image.h"
