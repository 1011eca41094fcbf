"""Writes the seed corpus of fuzz_recordio (idx text, NUL, rec bytes) with struct only:
an InsightFace-style pack (header record 0, two images, a record split at an embedded magic)."""
import os
import struct

MAGIC = 0xCED7230A


def part(cflag, data):
    return struct.pack("<II", MAGIC, cflag << 29 | len(data)) + data + b"\0" * (-len(data) % 4)


def record(payload):
    """dmlc's writer: split at every 4-aligned magic number, which is dropped."""
    cuts = [i for i in range(0, len(payload) - 3, 4) if struct.unpack_from("<I", payload, i)[0] == MAGIC]
    if not cuts:
        return part(0, payload)
    out, start = b"", 0
    for k, c in enumerate(cuts):
        out += part(1 if k == 0 else 2, payload[start:c])
        start = c + 4
    return out + part(3, payload[start:])


def pack(flag, label, labels=(), id_=0, data=b""):
    return struct.pack("<IfQQ", flag, label, id_, 0) + struct.pack("<%df" % len(labels), *labels) + data


def write(name, payloads):
    rec, idx = b"", ""
    for key, p in payloads:
        idx += "%d\t%d\n" % (key, len(rec))
        rec += record(p)
    os.makedirs("corpus/fuzz_recordio", exist_ok=True)
    with open("corpus/fuzz_recordio/" + name, "wb") as f:
        f.write(idx.encode() + b"\0" + rec)


jpeg = b"\xff\xd8\xff\xe0" + b"JFIF" * 3 + b"\xff\xd9"
write("insightface", [(0, pack(2, 0, (3, 5))), (1, pack(1, 0, (0,), 1, jpeg)), (2, pack(0, 1, (), 2, jpeg)),
                      (3, pack(2, 0, (1, 2))), (4, pack(2, 0, (2, 3)))])
write("multipart", [(7, pack(0, 3, (), MAGIC, jpeg + struct.pack("<I", MAGIC) + jpeg))])
write("plain", [(0, pack(0, 0, (), 0, b"abc")), (1, pack(0, 1, (), 1, b"defgh"))])
