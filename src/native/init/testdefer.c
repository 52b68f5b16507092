#include "init.h"
static bool never(const struct plan *plan) { return false; }
const struct feature feature_deferral_test = { .name = "deferral-test", .enabled = never };
