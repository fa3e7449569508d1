#!/usr/bin/python3
"""Write the CMYK/YCCK JPEG (and CMYK TIFF) test images and Pillow's decode of each.

Run with Debian's Pillow 9.4 and numpy (`apt-get install -y python3-pil python3-numpy`):
    /usr/bin/python3 test/fixtures-images/make_cmyk.py
For every image NAME it writes cmyk/NAME and cmyk/NAME.rgb = Image.open(NAME).convert("RGB").tobytes(),
and lists them in cmyk/cmyk.json. Pillow cannot write YCCK, so those are written by the small baseline
JPEG encoder below (the expected bytes are still Pillow's decode of the file).
"""
import io
import json
import os
import struct

import numpy as np
import PIL
from PIL import Image, ImageCms

assert PIL.__version__.startswith("9.4."), PIL.__version__
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cmyk")
W, H = 48, 40


def pattern_cmyk():
    """Smooth ramps in every channel (K too), a noisy patch and hard edges."""
    y, x = np.mgrid[0:H, 0:W]
    c = (x * 255 // (W - 1)).astype(np.uint8)
    m = (y * 255 // (H - 1)).astype(np.uint8)
    ye = ((x + y) * 3 % 256).astype(np.uint8)
    k = ((W - 1 - x) * 2 + y * 3).clip(0, 255).astype(np.uint8)
    a = np.stack([c, m, ye, k], -1)
    rng = np.random.default_rng(17)
    a[8:20, 12:30] = rng.integers(0, 256, (12, 18, 4))
    a[26:34, 4:20] = (255, 0, 0, 0)
    a[26:34, 20:36] = (0, 0, 0, 255)
    return a


def pattern_rgb():
    y, x = np.mgrid[0:H, 0:W]
    a = np.stack([(x * 5) % 256, (y * 6) % 256, ((x + y) * 3) % 256], -1).astype(np.uint8)
    a[10:20, 10:30] = np.random.default_rng(1).integers(0, 256, (10, 20, 3))
    return a


def segments(data):
    """(marker, start, end) of each segment before the first SOS."""
    p = 2
    while p + 4 <= len(data):
        marker = data[p + 1]
        end = p + 2 + struct.unpack(">H", data[p + 2:p + 4])[0]
        yield marker, p, end
        if marker == 0xDA:
            return
        p = end


def strip_adobe(data):
    out = bytearray(data)
    for marker, start, end in reversed(list(segments(data))):
        if marker == 0xEE and data[start + 4:start + 9] == b"Adobe":
            del out[start:end]
    assert b"Adobe" not in out
    return bytes(out)


def cmyk_icc():
    """A small valid ICC v2 CMYK output profile (lut8 A2B0/B2A0, Lab PCS), so the test shows an
    embedded profile is not applied (Pillow does not colour-manage)."""

    def tag(sig, body):
        return sig, body + b"\0" * (-len(body) % 4)

    def s15(v):
        return struct.pack(">i", round(v * 65536))

    def lut8(cin, cout, clut):
        ramp = bytes(range(256))
        return (b"mft1" + b"\0" * 4 + bytes([cin, cout, 2, 0])
                + b"".join(s15(1.0 if i % 4 == 0 else 0.0) for i in range(9))
                + ramp * cin + bytes(clut) + ramp * cout)

    a2b = []
    for i in range(16):
        c, m, yy, k = ((i >> 3) & 1, (i >> 2) & 1, (i >> 1) & 1, i & 1)
        light = (1 - 0.7 * c) * (1 - 0.6 * m) * (1 - 0.2 * yy) * (1 - 0.9 * k)
        a2b += [round(255 * light), 128 - 40 * c + 50 * m, 128 + 60 * yy - 10 * m]
    b2a = []
    for i in range(8):
        lightness = (i >> 2) & 1
        b2a += [0, 0, 0, 255 * (1 - lightness)]
    desc = b"desc" + b"\0" * 4 + struct.pack(">I", 10) + b"test CMYK\0" + b"\0" * 8 + b"\0" * 3 + b"\0" * 67
    tags = [
        tag(b"desc", desc),
        tag(b"cprt", b"text" + b"\0" * 4 + b"none\0"),
        tag(b"wtpt", b"XYZ " + b"\0" * 4 + s15(0.9642) + s15(1.0) + s15(0.8249)),
        tag(b"A2B0", lut8(4, 3, a2b)),
        tag(b"B2A0", lut8(3, 4, b2a)),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, bodies = b"", b""
    for sig, body in tags:
        table += sig + struct.pack(">II", offset + len(bodies), len(body))
        bodies += body
    size = offset + len(bodies)
    header = (struct.pack(">I", size) + b"\0" * 4 + struct.pack(">I", 0x02100000) + b"prtrCMYKLab "
              + b"\0" * 12 + b"acsp" + b"\0" * 24 + struct.pack(">I", 0) + s15(0.9642) + s15(1.0) + s15(0.8249)
              + b"\0" * 48)
    assert len(header) == 128
    profile = header + struct.pack(">I", len(tags)) + table + bodies
    ImageCms.ImageCmsProfile(io.BytesIO(profile))  # lcms accepts it
    return profile


# --- A minimal baseline JPEG encoder, for the 4-component layouts Pillow cannot write (YCCK). ---

ZIGZAG = sorted(range(64), key=lambda i: (i // 8 + i % 8, (i // 8) if (i // 8 + i % 8) % 2 else (i % 8)))
DCT = np.array([[(np.sqrt(0.125) if u == 0 else 0.5) * np.cos((2 * x + 1) * u * np.pi / 16)
                 for x in range(8)] for u in range(8)])
QUANT = np.array([1 + (i // 8 + i % 8) for i in range(64)]).reshape(8, 8)
# Fixed-length Huffman codes: every DC category (0..11) 4 bits, every AC symbol 8 bits.
DC_SYMS = list(range(12))
AC_SYMS = [0x00, 0xF0] + [(r << 4) | s for r in range(16) for s in range(1, 11)]


class Bits:
    def __init__(self):
        self.out, self.acc, self.n = bytearray(), 0, 0

    def put(self, value, length):
        for i in reversed(range(length)):
            self.acc = (self.acc << 1) | ((value >> i) & 1)
            self.n += 1
            if self.n == 8:
                self.out.append(self.acc)
                if self.acc == 0xFF:
                    self.out.append(0)
                self.acc, self.n = 0, 0

    def flush(self):
        while self.n:
            self.put(1, 1)
        return bytes(self.out)


def magnitude(v):
    size = int(abs(v)).bit_length()
    return size, (v if v >= 0 else v + (1 << size) - 1)


def encode_jpeg(planes, factors, transform):
    """planes: full-size uint8 arrays (one per component); factors: (h, v) per component."""
    hmax, vmax = max(f[0] for f in factors), max(f[1] for f in factors)
    mw, mh = 8 * hmax, 8 * vmax
    mcux, mcuy = -(-W // mw), -(-H // mh)
    comps = []
    for plane, (h, v) in zip(planes, factors):
        full = np.pad(plane.astype(float), ((0, mcuy * mh - H), (0, mcux * mw - W)), mode="edge")
        sy, sx = vmax // v, hmax // h
        comps.append(full.reshape(full.shape[0] // sy, sy, full.shape[1] // sx, sx).mean(axis=(1, 3)))
    bits, preds = Bits(), [0] * len(comps)
    for my in range(mcuy):
        for mx in range(mcux):
            for ci, (plane, (h, v)) in enumerate(zip(comps, factors)):
                for by in range(v):
                    for bx in range(h):
                        y0, x0 = (my * v + by) * 8, (mx * h + bx) * 8
                        coef = np.rint(DCT @ (plane[y0:y0 + 8, x0:x0 + 8] - 128) @ DCT.T / QUANT).astype(int).ravel()
                        zz = [int(coef[i]) for i in ZIGZAG]
                        size, value = magnitude(zz[0] - preds[ci])
                        preds[ci] = zz[0]
                        bits.put(DC_SYMS.index(size), 4)
                        bits.put(value, size)
                        run = 0
                        for a in zz[1:]:
                            if a == 0:
                                run += 1
                                continue
                            while run > 15:
                                bits.put(AC_SYMS.index(0xF0), 8)
                                run -= 16
                            size, value = magnitude(a)
                            bits.put(AC_SYMS.index((run << 4) | size), 8)
                            bits.put(value, size)
                            run = 0
                        if run:
                            bits.put(AC_SYMS.index(0x00), 8)

    def seg(marker, body):
        return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body

    def dht(cls, syms, length):
        counts = [0] * 16
        counts[length - 1] = len(syms)
        return bytes([cls << 4]) + bytes(counts) + bytes(syms)

    n = len(planes)
    out = b"\xff\xd8"
    out += seg(0xEE, b"Adobe" + struct.pack(">HHHB", 100, 0, 0, transform))
    out += seg(0xDB, bytes([0]) + bytes(int(QUANT.ravel()[i]) for i in ZIGZAG))
    out += seg(0xC0, struct.pack(">BHHB", 8, H, W, n) + b"".join(bytes([i + 1, (h << 4) | v, 0]) for i, (h, v) in enumerate(factors)))
    out += seg(0xC4, dht(0, DC_SYMS, 4) + dht(1, AC_SYMS, 8))
    out += seg(0xDA, bytes([n]) + b"".join(bytes([i + 1, 0x00]) for i in range(n)) + bytes([0, 63, 0]))
    return out + bits.flush() + b"\xff\xd9"


def ycck_planes(cmyk):
    """Adobe stores 255 - ink; libjpeg's CMYK->YCCK turns the stored C,M,Y into R,G,B = ink and K is kept."""
    r, g, b = (cmyk[..., i].astype(float) for i in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b + 128
    return [np.clip(np.rint(p), 0, 255) for p in (y, cb, cr)] + [255 - cmyk[..., 3].astype(float)]


def main():
    os.makedirs(OUT, exist_ok=True)
    cmyk = Image.fromarray(pattern_cmyk(), "CMYK")
    icc = cmyk_icc()
    files = {}

    def pillow_jpeg(**kw):
        b = io.BytesIO()
        cmyk.save(b, "JPEG", quality=92, **kw)
        return b.getvalue()

    b = io.BytesIO()
    Image.fromarray(pattern_rgb()).convert("CMYK").save(b, "JPEG", quality=92)
    files["issue_convert_q92.jpg"] = b.getvalue()
    files["cmyk_adobe_444.jpg"] = pillow_jpeg(subsampling=0)
    files["cmyk_adobe_422.jpg"] = pillow_jpeg(subsampling=1)
    files["cmyk_adobe_420.jpg"] = pillow_jpeg(subsampling=2)
    files["cmyk_adobe_icc.jpg"] = pillow_jpeg(subsampling=0, icc_profile=icc)
    for name in ["cmyk_adobe_444.jpg", "cmyk_adobe_420.jpg", "cmyk_adobe_icc.jpg"]:
        files[name.replace("adobe", "noadobe")] = strip_adobe(files[name])
    planes = ycck_planes(pattern_cmyk())
    files["ycck_444.jpg"] = encode_jpeg(planes, [(1, 1)] * 4, 2)
    files["ycck_420.jpg"] = encode_jpeg(planes, [(2, 2), (1, 1), (1, 1), (2, 2)], 2)
    files["ycck_440.jpg"] = encode_jpeg(planes, [(1, 2), (1, 1), (1, 1), (1, 2)], 2)
    b = io.BytesIO()
    cmyk.save(b, "TIFF")
    files["cmyk.tif"] = b.getvalue()

    manifest = []
    for name, data in files.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        im = Image.open(io.BytesIO(data))
        im.load()
        with open(os.path.join(OUT, name + ".rgb"), "wb") as f:
            f.write(im.convert("RGB").tobytes())
        sof = [f"{h}x{v}" for h, v in (im.layer[i][1:3] for i in range(len(im.layer)))] if hasattr(im, "layer") else []
        manifest.append({
            "file": name, "width": im.width, "height": im.height, "mode": im.mode,
            "adobe_transform": im.info.get("adobe_transform"), "sampling": sof,
            "icc": "icc_profile" in im.info,
        })
    with open(os.path.join(OUT, "cmyk.json"), "w") as f:
        json.dump({"pillow": PIL.__version__, "images": manifest}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
