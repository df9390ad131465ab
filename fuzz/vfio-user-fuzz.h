/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The libFuzzer entry points that fuzz/vfio-user-fuzz.c defines. */

#ifndef VFIO_USER_FUZZ_H
#define VFIO_USER_FUZZ_H

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* fuzz/pci-vet-fuzz.c: false when @data is not an input of that mode. */
bool vfio_user_vet_fuzz(const uint8_t *data, size_t size);

#endif /* VFIO_USER_FUZZ_H */
