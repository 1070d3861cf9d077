// breaks: config is below storage.
#pragma once
#include <nydus/storage/image.h>
