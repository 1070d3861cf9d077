// breaks: storage sees no JSON reader either (nydus/json.h is the wire's).
#pragma once
#include "nydus/json.h"
