#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Write the seed corpus of fuzz/vfio-user-fuzz.c into fuzz/corpus/.

Each seed is a server's side of a conversation with the harness's client
(the order of its requests is in client_drive()), in the harness's chunk
format: ctrl byte, 16-bit length, bytes.  Replies are sent with WAIT|FIX,
so the harness fills in the id and command of the request they answer;
the server's own requests (DMA_READ/WRITE) are sent as they are.

    fuzz/gen-corpus.py [DIR]
"""
import os
import struct
import sys

WAIT, FIX, FD, DELAY = 0x01, 0x02, 0x04, 0x80
FD_EVENTFD, FD_MEMFD = 0 << 3, 1 << 3
FD_COUNT = {1: 0 << 5, 2: 1 << 5, 9: 2 << 5, 16: 3 << 5}

REQUEST, REPLY, NO_REPLY, ERROR = 0x0, 0x1, 0x10, 0x20
VERSION, GET_INFO, REGION_INFO, IRQ_INFO = 1, 4, 5, 7
SET_IRQS, REGION_READ, REGION_WRITE = 8, 9, 10
DMA_READ, DMA_WRITE, RESET = 11, 12, 13

R, W, MMAP, CAPS = 1, 2, 4, 8
CAP_SPARSE, CAP_TYPE, CAP_MSIX = 1, 2, 3


def chunk(ctrl, data):
    return struct.pack('<BH', ctrl, len(data)) + data


def hdr(cmd, size, flags, err=0, msg_id=0):
    return struct.pack('<HHIII', msg_id, cmd, size, flags, err)


def reply(cmd, payload=b'', ctrl=0):
    """A reply to the client's next request: the harness fixes id/size."""
    return chunk(WAIT | FIX | ctrl, hdr(cmd, 16 + len(payload), REPLY)
                 + payload)


def error_reply(cmd, errno):
    return chunk(WAIT | FIX, hdr(cmd, 16, REPLY | ERROR, errno))


def request(cmd, payload, msg_id, flags=REQUEST):
    return chunk(0, hdr(cmd, 16 + len(payload), flags, 0, msg_id) + payload)


def version(caps=b'{"capabilities":{"max_msg_fds":8,'
                 b'"max_data_xfer_size":1048576,"pgsizes":4096,'
                 b'"max_dma_maps":65535}}'):
    return reply(VERSION, struct.pack('<HH', 0, 1) + caps + b'\0')


def dev_info(nregions=9, nirqs=5, flags=3):
    return reply(GET_INFO, struct.pack('<IIII', 16, flags, nregions, nirqs))


def region(index, size, flags=R | W, caps=b'', offset=None, ctrl=0):
    """Region info; @caps is the capability chain placed at offset 32."""
    if offset is None:
        offset = index << 40
    argsz = 32 + len(caps)
    cap_offset = 32 if caps else 0
    if caps:
        flags |= CAPS
    return reply(REGION_INFO, struct.pack('<IIIIQQ', argsz, flags, index,
                                          cap_offset, size, offset) + caps,
                 ctrl)


def region_too_small(index, size, caps_len, flags=R | W | CAPS):
    """First answer of a server whose caps do not fit in 32 bytes."""
    return reply(REGION_INFO, struct.pack('<IIIIQQ', 32 + caps_len, flags,
                                          index, 0, size, index << 40))


def sparse(areas, next_off=0):
    body = struct.pack('<HHIII', CAP_SPARSE, 1, next_off, len(areas), 0)
    for off, size in areas:
        body += struct.pack('<QQ', off, size)
    return body


def cap_type(t, sub, next_off=0):
    return struct.pack('<HHIII', CAP_TYPE, 1, next_off, t, sub)


def irq(index, count, flags=1 | 2):
    return reply(IRQ_INFO, struct.pack('<IIII', 16, flags, index, count))


def rw(offset, index, data=b'', count=None):
    count = len(data) if count is None else count
    return struct.pack('<QII', offset, index, count) + data


def dma(addr, count, data=b''):
    return struct.pack('<QQ', addr, count) + data


def setup(nregions=9, nirqs=5, regions=None):
    """VERSION, GET_INFO, the region and irq infos of a plain PCI device."""
    s = version() + dev_info(nregions, nirqs)
    regions = regions or {}
    for i in range(min(nregions, 12)):
        if i in regions:
            s += regions[i]
        elif i == 7:
            s += region(7, 256)
        elif i < 6 and i % 2 == 0:
            s += region(i, 0x1000)
        else:
            s += region(i, 0)
    for i in range(nirqs):
        s += irq(i, 16 if i == 2 else 1)
    return s


def runtime(max_fds=8):
    """The accesses of client_drive() after setup, all answered."""
    s = reply(REGION_READ, rw(0, 7, b'\x86\x80\x13\x10'))
    s += reply(REGION_READ, rw(0, 0, bytes(range(8))))
    s += reply(REGION_READ, rw(0, 7, bytes(300)))
    s += reply(REGION_WRITE, rw(4, 7, count=2))
    # the posted write needs no reply
    s += reply(REGION_WRITE, rw(0, 0, count=300))
    # SET_IRQS: [-1], [e1, e2] (one message per fd with max_msg_fds 1), [-1]
    for _ in range(3 if max_fds > 1 else 4):
        s += reply(SET_IRQS)
    s += reply(SET_IRQS)            # MSI-X disable (DATA_NONE, count 0)
    s += reply(SET_IRQS)            # INTx unmask
    s += reply(RESET)
    s += reply(REGION_READ, rw(0, 0, b'\1\2\3\4'))
    return s


def vet_conversation(config, rom_sized=0):
    """client_vet(): config read, ROM BAR sizing, then the overlay."""
    s = reply(REGION_READ, rw(0, 7, config))
    s += reply(REGION_READ, rw(0x30, 7, bytes(4)))
    s += reply(REGION_WRITE, rw(0x30, 7, count=4))
    s += reply(REGION_READ, rw(0x30, 7, struct.pack('<I', rom_sized)))
    s += reply(REGION_WRITE, rw(0x30, 7, count=4))
    s += reply(REGION_READ, rw(0, 7, b'\xff' * 64))     # as a dead server
    s += reply(REGION_WRITE, rw(0x30, 7, count=4))
    return s


def seeds():
    pat = bytes(i & 0xff for i in range(64))
    yield 'version', version()
    yield 'version-nocaps', reply(VERSION, struct.pack('<HH', 0, 1))
    yield 'version-error', error_reply(VERSION, 22)
    yield 'setup', setup()
    yield 'full', setup() + runtime()
    yield 'full-onefd', (reply(VERSION, struct.pack('<HH', 0, 1))
                         + setup()[len(version()):] + runtime(1))
    # BAR0 mmappable from a memfd, with a sparse area and a type cap,
    # announced too big for the first 32-byte request, then sent whole.
    caps = sparse([(0, 0x800), (0xc00, 0x400)], 32 + 32) + cap_type(3, 1)
    yield 'region-sparse', setup(regions={
        0: region_too_small(0, 0x1000, len(caps), R | W | MMAP | CAPS)
           + region(0, 0x1000, R | W | MMAP, caps, 0, FD | FD_MEMFD)})
    # Old libvfio-user: one fd per sparse area.
    # (The memfds the harness sends are 8 KiB: the region must fit.)
    caps = sparse([(0, 0x1000), (0x1000, 0x1000)])
    yield 'region-fd-per-area', setup(regions={
        2: region_too_small(2, 0x2000, len(caps), R | W | MMAP | CAPS)
           + region(2, 0x2000, R | W | MMAP, caps, 0,
                    FD | FD_MEMFD | FD_COUNT[2])})
    yield 'region-msix-cap', setup(regions={
        0: region_too_small(0, 0x2000, 8)
           + region(0, 0x2000, R | W, struct.pack('<HHI', CAP_MSIX, 1, 0))})
    yield 'irq-fds', setup() + chunk(WAIT | FIX | FD | FD_EVENTFD,
                                     hdr(REGION_READ, 16 + 20, REPLY)
                                     + rw(0, 7, b'\0\0\0\0'))
    # The server's DMA, at several points of the conversation (before
    # negotiation the client has no handler yet: ENOSYS).
    dmas = (request(DMA_READ, dma(0x10000, 64), 0x100)
            + request(DMA_WRITE, dma(0x10040, 64, pat), 0x101)
            + request(DMA_READ, dma(0x11ff8, 16), 0x102)      # A then B
            + request(DMA_WRITE, dma(0x12000, 8, pat[:8]), 0x103)  # B is ro
            + request(DMA_READ, dma(0x40000, 0x1000), 0x104)
            + request(DMA_WRITE, dma(0x40ff0, 32, pat[:32]), 0x105)
            + request(DMA_READ, dma(0xffffffffffffe000, 0x1000), 0x106)
            + request(DMA_READ, dma(0xffffffffffffe800, 0x1000), 0x107)
            + request(DMA_READ, dma(0xfffffffffffff000, 0x1000), 0x10a)
            + request(DMA_WRITE, dma(0x10000, 4, pat[:4]), 0x108,
                      REQUEST | NO_REPLY)
            + request(DMA_READ, dma(0x10000, 0x200000), 0x109)
            + request(DMA_READ, dma(0x50ff0, 32), 0x10b)     # one iovec
            + request(DMA_WRITE, dma(0x50ff0, 32, pat[:32]), 0x10c))
    yield 'dma-early', version() + dmas
    yield 'dma-setup', setup() + dmas + runtime()
    yield 'dma-during-read', (setup() + dmas[:200]
                              + reply(REGION_READ,
                                      rw(0, 7, b'\x86\x80\x13\x10'))
                              + dmas[200:])
    yield 'dma-bad', (version()
                      + request(DMA_READ, dma(0x10000, 64, pat), 0x200)
                      + request(DMA_WRITE, dma(0x10000, 64, pat[:8]), 0x201)
                      + request(DMA_READ, b'\0' * 8, 0x202)
                      + request(DMA_MAP_CMD, b'\0' * 32, 0x203)
                      + request(DMA_READ, dma(0x30000, 8), 0x204))
    # The whole realize, vetting included, over the wire (the vetting
    # mode's config spaces are in vet_seeds()).
    good = pci_config(caps=((0x40, PCI_CAP_PM, 0x50, bytes(6)),
                            (0x50, PCI_CAP_MSI, 0x70, msi()),
                            (0x70, PCI_CAP_MSIX, 0, msix())))
    yield 'full-vet', setup() + runtime() + vet_conversation(good)
    yield 'full-vet-rom', (setup(regions={6: region(6, 0x10000)}) + runtime()
                           + vet_conversation(good, 0xffff0000))
    yield 'full-vet-loop', (setup() + runtime()
                            + vet_conversation(pci_config(
                                caps=((0x40, PCI_CAP_PM, 0x40, bytes(6)),))))
    # A late reply, an error, a reply to the wrong command.
    yield 'late', version() + reply(GET_INFO, struct.pack('<IIII', 16, 3, 9, 5),
                                    DELAY)
    yield 'errors', (version() + dev_info()
                     + error_reply(REGION_INFO, 5)
                     + chunk(WAIT | FIX, hdr(IRQ_INFO, 32, REPLY) + bytes(16))
                     + error_reply(REGION_INFO, 0))
    # Device info the client must refuse, and a stream that stops dead.
    yield 'devinfo-bad', version() + dev_info(100, 5)
    yield 'truncated', version() + chunk(WAIT, hdr(GET_INFO, 32, REPLY)
                                         + b'\0' * 4)


DMA_MAP_CMD = 2

# The vetting mode (fuzz/pci-vet-fuzz.c): a config space and the sizes
# the server gave, vetted directly.
CFG_256, CFG_4096, CFG_0, CFG_0X20 = 0, 1, 2, 3
PCI_CAP_PM, PCI_CAP_MSI, PCI_CAP_EXP, PCI_CAP_MSIX = 0x01, 0x05, 0x10, 0x11
EXT_AER, EXT_REBAR = 0x01, 0x15
IO, MEM64 = 0x1, 0x4


def size_code(size):
    """pci-vet-fuzz.c's size byte: 0 none, n <= 64: 2^(n-1)."""
    return size.bit_length() if size else 0


def pci_config(size=256, caps=(), ext=(), bars=(), header=0, pin=1,
               vendor=0x1234):
    """caps: (pos, id, next, body) from 0x34; ext: (pos, id, next, body)."""
    c = bytearray(size)
    struct.pack_into('<HH', c, 0, vendor, 0x5678)
    c[0x0e] = header
    c[0x3d] = pin
    for i, val in bars:
        struct.pack_into('<I', c, 0x10 + 4 * i, val)
    if caps:
        c[0x06] |= 0x10             # PCI_STATUS_CAP_LIST
        c[0x34] = caps[0][0]
    for pos, cid, nxt, body in caps:
        c[pos:pos + 2 + len(body)] = bytes([cid, nxt]) + body
    for pos, cid, nxt, body in ext:
        c[pos:pos + 4 + len(body)] = (struct.pack('<I', cid | 1 << 16 |
                                                  nxt << 20) + body)
    return bytes(c)


def vet(config, cfg=CFG_256, bar_sizes=(0x1000,), rom=False, rom_region=0,
        rom_sized=0, ops=b''):
    bars = list(bar_sizes) + [0] * (6 - len(bar_sizes))
    return (b'PCIV' + bytes([cfg, int(rom)])
            + bytes(size_code(b) if b < 1 << 64 else b >> 64 for b in bars)
            + bytes([size_code(rom_region)]) + struct.pack('<I', rom_sized)
            + config + ops)


def vet_read(off, returned):
    return struct.pack('<BHB', 0, off, len(returned)) + returned


def vet_write(off, data):
    return struct.pack('<BHB', 1, off, len(data)) + data


def msi(mmc=5, is64=True, mask=True):
    flags = mmc << 1 | (0x80 if is64 else 0) | (0x100 if mask else 0)
    return struct.pack('<H', flags) + bytes(20)


def msix(entries=16, table=0, pba=0x800):
    return struct.pack('<HII', entries - 1, table, pba)


def vet_seeds():
    ones = b'\xff' * 256
    good_caps = ((0x40, PCI_CAP_PM, 0x50, bytes(6)),
                 (0x50, PCI_CAP_MSI, 0x70, msi()),
                 (0x70, PCI_CAP_MSIX, 0x80, msix()),
                 (0x80, PCI_CAP_EXP, 0, bytes(0x3a)))
    good_ext = ((0x100, EXT_AER, 0x140, bytes(0x38)),
                (0x140, EXT_REBAR, 0,
                 struct.pack('<II', 0x10, 1 << 5) + bytes(8)))
    rom_ops = (vet_write(0x30, b'\x00\xf8\xff\xff') + vet_read(0x30, bytes(4))
               + vet_write(0x30, bytes(4)) + vet_read(0x30, ones[:4]))
    yield 'vet-pci', vet(pci_config(), ops=vet_read(0, ones[:255])
                         + vet_read(0x3c, bytes(4)))
    yield 'vet-pcie', vet(pci_config(4096, good_caps, good_ext,
                                     bars=((0, MEM64),)),
                          CFG_4096, (0x4000, 0), True, 0x10000, 0xffff0000,
                          vet_read(0, ones[:255]) + vet_read(0x100, ones[:255])
                          + rom_ops)
    yield 'vet-cap-loop-self', vet(pci_config(caps=((0x40, PCI_CAP_PM, 0x40,
                                                      bytes(6)),)))
    yield 'vet-cap-loop-two', vet(pci_config(caps=((0x40, PCI_CAP_PM, 0x50,
                                                     bytes(6)),
                                                    (0x50, 0x09, 0x40,
                                                     bytes(2)))))
    yield 'vet-cap-misaligned', vet(pci_config(caps=((0x41, PCI_CAP_PM, 0,
                                                      bytes(6)),)))
    yield 'vet-all-ones', vet(ones)
    yield 'vet-msi-mmc7', vet(pci_config(caps=((0x50, PCI_CAP_MSI, 0,
                                                msi(7)),)))
    yield 'vet-msi-at-end', vet(pci_config(caps=((0xf0, PCI_CAP_MSI, 0,
                                                  msi()[:12]),)))
    yield 'vet-msix-bir5-nobar', vet(pci_config(caps=((0x70, PCI_CAP_MSIX, 0,
                                                       msix(table=5)),)))
    yield 'vet-msix-bir7', vet(pci_config(caps=((0x70, PCI_CAP_MSIX, 0,
                                                 msix(table=7)),)))
    yield 'vet-msix-table-big', vet(pci_config(caps=((0x70, PCI_CAP_MSIX, 0,
                                                      msix(2048)),)))
    yield 'vet-msix-twice', vet(pci_config(caps=((0x70, PCI_CAP_MSIX, 0x80,
                                                  msix()),
                                                 (0x80, PCI_CAP_MSIX, 0,
                                                  msix()))))
    yield 'vet-rom-0xffffe800', vet(pci_config(), rom=True,
                                    rom_region=0x2000, rom_sized=0xffffe800)
    yield 'vet-rom-region-small', vet(pci_config(), rom=True,
                                      rom_region=0x1000,
                                      rom_sized=0xffff0000, ops=rom_ops)
    yield 'vet-config-0', vet(b'', CFG_0)
    yield 'vet-config-0x20', vet(pci_config()[:0x20], CFG_0X20)
    yield 'vet-config-odd', vet(pci_config() + bytes(0x55 - 256 % 0x55), 5)
    yield 'vet-bar-not-pow2', vet(pci_config(), bar_sizes=(0x1000,
                                                           65 << 64))
    yield 'vet-bar64-last', vet(pci_config(bars=((5, MEM64),)),
                                bar_sizes=(0, 0, 0, 0, 0, 0x1000))
    yield 'vet-bar-io-big', vet(pci_config(bars=((0, IO),)),
                                bar_sizes=(0x20000,))
    yield 'vet-header-type1', vet(pci_config(header=1))
    yield 'vet-pin5', vet(pci_config(pin=5))
    yield 'vet-pcie-cap-small', vet(pci_config(caps=((0xf8, PCI_CAP_EXP, 0,
                                                      bytes(6)),)))
    yield 'vet-pm-at-end', vet(pci_config(caps=((0xfc, PCI_CAP_PM, 0,
                                                 bytes(2)),)))
    yield 'vet-ext-loop', vet(pci_config(4096, ext=((0x100, EXT_AER, 0x100,
                                                     bytes(4)),)), CFG_4096)
    yield 'vet-ext-small', vet(pci_config(4096, ext=((0x100, EXT_AER, 0x104,
                                                      b''),
                                                     (0x104, EXT_AER, 0,
                                                      bytes(4)))), CFG_4096)
    # PCIe without extended capabilities, a vendor capability, no ROM,
    # writes outside the ROM BAR.
    yield 'vet-pcie-noext', vet(pci_config(4096, ((0x40, 0x09, 0,
                                                   bytes(6)),)),
                                CFG_4096, rom=True,
                                ops=vet_write(0x04, b'\x07\x00')
                                + vet_read(0x30, ones[:4]))
    yield 'vet-msix-at-end', vet(pci_config(caps=((0xf8, PCI_CAP_MSIX, 0,
                                                   msix()[:6]),)))
    yield 'vet-rebar-bad', vet(pci_config(4096, ext=((0x100, EXT_REBAR, 0,
                                                      struct.pack('<II', 0,
                                                                  7 << 5)),)),
                               CFG_4096)


def main():
    top = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(top, 'corpus')
    os.makedirs(out, exist_ok=True)
    all_seeds = list(seeds()) + list(vet_seeds())
    for name, data in all_seeds:
        with open(os.path.join(out, name), 'wb') as f:
            f.write(data)
    print(f'{len(all_seeds)} seeds in {out}')


if __name__ == '__main__':
    main()
