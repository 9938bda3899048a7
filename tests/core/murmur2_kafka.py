#!/usr/bin/env python3
# Expected values of tests/core/partitioner_test.cc Murmur2HandlesBytesAboveSeven, computed
# independently of core/partitioner.cc. Asserts the Kafka/akka vectors first, then prints.
# Mirrors org.apache.kafka.common.utils.Utils.murmur2(byte[]) exactly: Java bytes are signed
# (-128..127), `data[i] & 0xff` sign-extends to int and then masks, ints wrap at 32 bits and
# `>>>` is an unsigned shift of the 32-bit value.
def to_int(x):
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x & 0x80000000 else x

def jbyte(b):  # Java's byte for an unsigned 0..255 value
    return b - 256 if b >= 128 else b

def ushr(x, n):  # Java's >>> on an int
    return to_int((x & 0xFFFFFFFF) >> n)

def murmur2(data: bytes) -> int:
    d = [jbyte(b) for b in data]
    length = len(d)
    seed = to_int(0x9747b28c)
    m = 0x5bd1e995
    r = 24
    h = to_int(seed ^ length)
    for i in range(length // 4):
        i4 = i * 4
        k = to_int((d[i4] & 0xff) + ((d[i4 + 1] & 0xff) << 8) + ((d[i4 + 2] & 0xff) << 16)
                   + ((d[i4 + 3] & 0xff) << 24))
        k = to_int(k * m)
        k = to_int(k ^ ushr(k, r))
        k = to_int(k * m)
        h = to_int(h * m)
        h = to_int(h ^ k)
    rem = length % 4
    base = length & ~3
    if rem == 3:
        h = to_int(h ^ ((d[base + 2] & 0xff) << 16))
    if rem >= 2:
        h = to_int(h ^ ((d[base + 1] & 0xff) << 8))
    if rem >= 1:
        h = to_int(h ^ (d[base] & 0xff))
        h = to_int(h * m)
    h = to_int(h ^ ushr(h, 13))
    h = to_int(h * m)
    h = to_int(h ^ ushr(h, 15))
    return h

known = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536,
         b"a-little-bit-longer-string": -1486304829,
         b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971, b"abc": 479470107,
         b"1": -1993445489, b"12": 126087238, b"123": -267702483, b"1234": -1614185708,
         b"12345": -1188365604}
for k, v in known.items():
    assert murmur2(k) == v, (k, murmur2(k), v)
for s in [b"\xff", b"\x80", b"\xff\x80", b"\xfe\x81\x90", b"\xff\x80\xfe\x81", b"\xff\x80\xfe\x81\x90",
          "Gerät-ü".encode(), b"\x80\x80\x80\x80\x80\x80\x80", b"\x7f\x00\x7e\x01\x10"]:
    print(repr(s), murmur2(s))
