/* SPDX-License-Identifier: MIT */
/* asm/errno.h - for the BPF compile only: libbpf's usdt.bpf.h includes
 * <linux/errno.h>, which wants the architecture's <asm/errno.h>; clang
 * -target bpf has no multiarch include directory, and on x86_64 that
 * header is the generic one. */
#include <asm-generic/errno.h>
