#include "keystead.h"
int main() { return ks_abi_version() == KS_ABI_VERSION ? 0 : 1; }
