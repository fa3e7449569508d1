#!/usr/bin/python3
"""Write the BMP test images and what Pillow 9.4 makes of each.

Run with Debian's Pillow 9.4 (`apt-get install -y python3-pil`):
    /usr/bin/python3 test/fixtures-images/make_bmp.py
Pillow writes the 1-bit, L, P, RGB and RGBA files; the other layouts (4-bit, RLE, bitfields, top-down,
OS/2 and v4/v5 headers, 16-bit) are written here with struct. For every image NAME, bmp/NAME.rgb holds
Image.open(NAME).convert("RGB").tobytes(); bmp/bmp.json lists the images, the files Pillow refuses, and
for truncated copies of some files whether Pillow refuses them or the sha256 of the RGB bytes it gives.
"""
import hashlib
import io
import json
import os
import random
import re
import struct

import PIL
from PIL import Image

assert PIL.__version__.startswith("9.4."), PIL.__version__
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bmp")
W, H = 21, 13
rnd = random.Random(5)


def pack_rows(rows, bits):
    """Pixel rows (lists of ints: indices, or packed ints for >8 bits) -> padded rows, in the given order."""
    out = b""
    for row in rows:
        if bits >= 8:
            line = b"".join(v.to_bytes(bits // 8, "little") for v in row)
        else:
            per = 8 // bits
            line = bytes(
                sum(v << (8 - bits * (k + 1)) for k, v in enumerate(row[i:i + per]))
                for i in range(0, len(row), per)
            )
        out += line + b"\0" * (-len(line) % 4)
    return out


def bmp(width, height, bits, data, palette=b"", compression=0, header=40, top_down=False, masks=None,
        colors=None, extra=b""):
    """A BMP file: file header, info header (12, 40, 108 or 124 bytes), 40-byte-header masks, palette, data."""
    if header == 12:
        info = struct.pack("<IHHHH", 12, width, height, 1, bits)
    else:
        h = (2**32 - height) if top_down else height
        ncolors = len(palette) // 4 if colors is None else colors
        info = struct.pack("<IIIHHIIiiII", header, width, h, 1, bits, compression, len(data), 2835, 2835, ncolors, 0)
        if header > 40:
            m = (list(masks or ()) + [0] * 4)[:4]
            info += (struct.pack("<4I", *m) + b"\0" * 68)[: header - 40]
        elif masks:
            extra = struct.pack("<3I", *masks[:3]) + extra
    offset = 14 + len(info) + len(extra) + len(palette)
    return b"BM" + struct.pack("<IHHI", offset + len(data), 0, 0, offset) + info + extra + palette + data


def bgrx(colours):
    return b"".join(bytes([b, g, r, 0]) for r, g, b in colours)


def rand_colours(n):
    return [(rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)) for _ in range(n)]


def grid(width, height, f):
    return [[f(x, y) for x in range(width)] for y in range(height)]


def bottom_up(rows):
    return rows[::-1]


def pillow_file(im, **kw):
    b = io.BytesIO()
    im.save(b, "BMP", **kw)
    return b.getvalue()


def rle8_basic(palette=None):
    # Bottom row first. Runs, an absolute run of odd length (word-padded), a short row ended by
    # end-of-line, an over-long run (Pillow clips it to the row), end-of-bitmap.
    w = 10
    d = b"\x05\x01\x05\x02\x00\x00"
    d += b"\x00\x03\x03\x04\x05\x00" + b"\x07\x06\x00\x00"
    d += b"\x04\x07\x00\x00"
    d += b"\x00\x0a" + bytes(range(10, 20)) + b"\x00\x00"
    d += b"\x0c\x08\x00\x00"
    d += b"\x0a\x09\x00\x01"
    return bmp(w, 6, 8, d, palette or bgrx(rand_colours(20)), compression=1)


def rle4_basic():
    # Runs alternate two nibbles; absolute runs of 4 (two bytes) and 3 (two bytes: Pillow 9.4 reads
    # only one, so it keeps two pixels), then a final full row and end-of-bitmap.
    w = 10
    d = b"\x0a\x12\x00\x00"
    d += b"\x00\x04\x34\x56" + b"\x06\x77\x00\x00"
    d += b"\x00\x03\x89\xa0" + b"\x07\xbb\x00\x00"
    d += b"\x0a\xcd\x00\x01"
    return bmp(w, 4, 4, d, bgrx(rand_colours(16)), compression=2)


def rle4_odd5():
    # An absolute run of 5 (three bytes plus a pad byte); Pillow 9.4 reads two bytes and goes on from there.
    d = b"\x00\x05\x12\x34\x50\x00" + b"\x03\x66\x00\x00" + b"\x08\x77\x00\x00" + b"\x08\x99\x00\x01"
    return bmp(8, 3, 4, d, bgrx(rand_colours(16)), compression=2)


def rle8_delta():
    # A delta escape (00 02 dx dy); Pillow 9.4 reads two more bytes than the format has, as dx, dy.
    d = b"\x08\x01\x00\x00" + b"\x00\x02\x03\x00" + b"\x02\x00" + b"\x03\x05\x00\x00" + b"\x08\x03\x00\x00" + b"\x08\x04\x00\x01"
    return bmp(8, 4, 8, d, bgrx(rand_colours(8)), compression=1)


def images():
    files = {}
    idx = lambda n: grid(W, H, lambda x, y: (x * 7 + y * 3 + (x * y) % 5) % n)
    rgb = grid(W, H, lambda x, y: (x * 12 % 256, y * 19 % 256, (x * y * 5 + 40) % 256))

    im = Image.new("RGB", (W, H))
    im.putdata([tuple(p) for row in rgb for p in row])
    files["pil_rgb.bmp"] = pillow_file(im)
    files["pil_1.bmp"] = pillow_file(im.convert("1"))
    files["pil_L.bmp"] = pillow_file(im.convert("L"))
    files["pil_P.bmp"] = pillow_file(im.convert("P", palette=Image.ADAPTIVE, colors=200))
    rgba = im.convert("RGBA")
    rgba.putalpha(Image.new("L", (W, H), 77))
    rgba.putpixel((0, 0), (1, 2, 3, 0))
    files["pil_rgba_32bit.bmp"] = pillow_file(rgba)

    files["p1_colour.bmp"] = bmp(W, H, 1, pack_rows(bottom_up(idx(2)), 1), bgrx([(200, 10, 30), (20, 220, 90)]))
    files["p1_colors0.bmp"] = bmp(W, H, 1, pack_rows(bottom_up(idx(2)), 1), bgrx([(0, 0, 0), (255, 255, 255)]), colors=0)
    files["p4.bmp"] = bmp(W, H, 4, pack_rows(bottom_up(idx(16)), 4), bgrx(rand_colours(16)))
    files["p4_colors5.bmp"] = bmp(W, H, 4, pack_rows(bottom_up(idx(16)), 4), bgrx(rand_colours(5)))
    files["p8_colors4.bmp"] = bmp(W, H, 8, pack_rows(bottom_up(grid(W, H, lambda x, y: (x * 13 + y * 29) % 256)), 8), bgrx(rand_colours(4)))
    files["p8_colors0.bmp"] = bmp(W, H, 8, pack_rows(bottom_up(idx(256)), 8), bgrx(rand_colours(256)), colors=0)
    files["p8_topdown.bmp"] = bmp(W, H, 8, pack_rows(idx(50), 8), bgrx(rand_colours(50)), top_down=True)
    files["p8_bw2.bmp"] = bmp(W, H, 8, pack_rows(bottom_up(idx(2)), 8), bgrx([(0, 0, 0), (255, 255, 255)]))
    files["p8_gray16.bmp"] = bmp(W, H, 8, pack_rows(bottom_up(idx(16)), 8), bgrx([(i, i, i) for i in range(16)]))
    bgr = lambda rows: [[b | (g << 8) | (r << 16) for r, g, b in row] for row in rows]
    files["rgb24_topdown.bmp"] = bmp(W, H, 24, pack_rows(bgr(rgb), 24), top_down=True)
    files["rgb24_v5.bmp"] = bmp(W, H, 24, pack_rows(bottom_up(bgr(rgb)), 24), header=124)
    files["os2_rgb24.bmp"] = bmp(W, H, 24, pack_rows(bottom_up(bgr(rgb)), 24), header=12)
    os2_pal = b"".join(bytes([b, g, r]) for r, g, b in rand_colours(256))
    files["os2_p8.bmp"] = bmp(W, H, 8, pack_rows(bottom_up(idx(256)), 8), os2_pal, header=12)

    x32 = lambda shifts, extra: [[(r << shifts[0]) | (g << shifts[1]) | (b << shifts[2]) | (extra(x, y) << shifts[3])
                                  for x, (r, g, b) in enumerate(row)] for y, row in enumerate(bottom_up(rgb))]
    noise = lambda x, y: rnd.randrange(256)
    files["x32_bi_rgb.bmp"] = bmp(W, H, 32, pack_rows(x32((16, 8, 0, 24), noise), 32))
    files["x32_bitfields_bgrx.bmp"] = bmp(W, H, 32, pack_rows(x32((16, 8, 0, 24), noise), 32), compression=3,
                                          masks=(0xFF0000, 0xFF00, 0xFF))
    files["a32_v4_bgra.bmp"] = bmp(W, H, 32, pack_rows(x32((16, 8, 0, 24), noise), 32), compression=3, header=108,
                                   masks=(0xFF0000, 0xFF00, 0xFF, 0xFF000000))
    files["a32_v5_rgba.bmp"] = bmp(W, H, 32, pack_rows(x32((0, 8, 16, 24), noise), 32), compression=3, header=124,
                                   masks=(0xFF, 0xFF00, 0xFF0000, 0xFF000000))
    files["x32_v4_xbgr.bmp"] = bmp(W, H, 32, pack_rows(x32((24, 16, 8, 0), noise), 32), compression=3, header=108,
                                   masks=(0xFF000000, 0xFF0000, 0xFF00, 0))
    files["a32_v4_abgr.bmp"] = bmp(W, H, 32, pack_rows(x32((24, 16, 8, 0), noise), 32), compression=3, header=108,
                                   masks=(0xFF000000, 0xFF0000, 0xFF00, 0xFF))
    files["a32_v4_zero_masks.bmp"] = bmp(W, H, 32, pack_rows(x32((16, 8, 0, 24), noise), 32), compression=3, header=108,
                                         masks=(0, 0, 0, 0))
    words = grid(W, H, lambda x, y: rnd.randrange(65536))
    files["rgb16_555.bmp"] = bmp(W, H, 16, pack_rows(words, 16))
    files["rgb16_565.bmp"] = bmp(W, H, 16, pack_rows(words, 16), compression=3, masks=(0xF800, 0x7E0, 0x1F))
    files["rgb16_555_bitfields_v4.bmp"] = bmp(W, H, 16, pack_rows(words, 16), compression=3, header=108,
                                              masks=(0x7C00, 0x3E0, 0x1F))
    files["rle8.bmp"] = rle8_basic()
    files["rle4.bmp"] = rle4_basic()
    files["rle4_odd5.bmp"] = rle4_odd5()
    files["rle8_delta.bmp"] = rle8_delta()
    files["rle8_gray.bmp"] = rle8_basic(bgrx([(i, i, i) for i in range(20)]))
    files["rle8_early_end.bmp"] = bmp(10, 6, 8, b"\x0a\x01\x00\x00\x0a\x02\x00\x01", bgrx(rand_colours(4)), compression=1)
    files["rle8_bw2.bmp"] = bmp(10, 2, 8, b"\x0a\x01\x00\x00\x0a\x00\x00\x01", bgrx([(0, 0, 0), (255, 255, 255)]), compression=1)
    files["p4_gray16.bmp"] = bmp(W, H, 4, pack_rows(bottom_up(idx(16)), 4), bgrx([(i, i, i) for i in range(16)]))
    files["bits2.bmp"] = bmp(W, H, 2, pack_rows(bottom_up(idx(4)), 2), bgrx(rand_colours(4)))
    files["jpeg_compression.bmp"] = bmp(W, H, 24, pack_rows(bottom_up(bgr(rgb)), 24), compression=4)
    files["header52.bmp"] = bmp(W, H, 24, pack_rows(bottom_up(bgr(rgb)), 24), header=52, masks=(0, 0, 0))
    files["bitfields_odd_masks.bmp"] = bmp(W, H, 32, pack_rows(x32((16, 8, 0, 24), noise), 32), compression=3,
                                           masks=(0xFF00, 0xFF0000, 0xFF))
    files["palette_300.bmp"] = bmp(W, H, 8, pack_rows(bottom_up(idx(256)), 8), bgrx(rand_colours(300)))
    return files


def pillow_rgb(data):
    """(mode, RGB bytes) or an error string."""
    try:
        im = Image.open(io.BytesIO(data))
        im.load()
        return im.mode, im.convert("RGB").tobytes(), im.size
    except Exception as e:  # noqa: BLE001 - any refusal counts
        return re.sub(r" <[^>]*>", "", f"{type(e).__name__}: {e}")  # no object addresses


def main():
    os.makedirs(OUT, exist_ok=True)
    manifest = {"pillow": PIL.__version__, "images": [], "refused": [], "truncated": []}
    files = images()
    for name, data in files.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        r = pillow_rgb(data)
        if isinstance(r, str):
            manifest["refused"].append({"file": name, "pillow_error": r})
            continue
        mode, rgb, (w, h) = r
        with open(os.path.join(OUT, name + ".rgb"), "wb") as f:
            f.write(rgb)
        manifest["images"].append({"file": name, "width": w, "height": h, "mode": mode})
    for name in ["pil_P.bmp", "p4.bmp", "rgb24_topdown.bmp", "os2_p8.bmp", "a32_v4_bgra.bmp", "rle8.bmp", "rle4.bmp"]:
        data = files[name]
        for n in sorted({1, 2, 14, 20, 40, 60, len(data) // 2, len(data) - 5, len(data) - 2, len(data) - 1}):
            r = pillow_rgb(data[:n])
            manifest["truncated"].append({"file": name, "length": n, **(
                {"pillow_error": r} if isinstance(r, str) else {"sha256": hashlib.sha256(r[1]).hexdigest()})})
    with open(os.path.join(OUT, "bmp.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
