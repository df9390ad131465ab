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


def main():
    top = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(top, 'corpus')
    os.makedirs(out, exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(out, name), 'wb') as f:
            f.write(data)
    print(f'{len(list(seeds()))} seeds in {out}')


if __name__ == '__main__':
    main()
