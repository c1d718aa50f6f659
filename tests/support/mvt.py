"""A small Mapbox Vector Tile reader for the tests (the spec 2.1 needs only varints,
length-delimited fields and fixed32/64 numbers): what a client would draw, decoded."""

from __future__ import annotations

import math
import struct


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def _fields(buf: bytes):
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            n, i = _varint(buf, i)
            value, i = buf[i:i + n], i + n
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wire}")
        yield field, wire, value


def _packed(buf: bytes) -> list[int]:
    out, i = [], 0
    while i < len(buf):
        v, i = _varint(buf, i)
        out.append(v)
    return out


def _value(buf: bytes):
    for field, _, v in _fields(buf):
        if field == 1:
            return v.decode()
        if field == 2:
            return struct.unpack("<f", v)[0]
        if field == 3:
            return struct.unpack("<d", v)[0]
        if field in (4, 5):
            return v
        if field == 6:
            return (v >> 1) ^ -(v & 1)
        if field == 7:
            return bool(v)


def _points_in(geometry: list[int]) -> int:
    """How many vertices a geometry command stream holds (MoveTo/LineTo counts)."""
    i = n = 0
    while i < len(geometry):
        cmd, count = geometry[i] & 7, geometry[i] >> 3
        i += 1
        if cmd in (1, 2):
            n += count
            i += 2 * count
    return n


def decode(data: bytes) -> dict[str, dict]:
    """{layer name: {"extent", "features": [{"id", "type", "props", "vertices"}]}}."""
    layers = {}
    for field, _, raw in _fields(data):
        if field != 3:
            continue
        name, keys, values, feats, extent = None, [], [], [], 4096
        for f, _, v in _fields(raw):
            if f == 1:
                name = v.decode()
            elif f == 3:
                keys.append(v.decode())
            elif f == 4:
                values.append(_value(v))
            elif f == 2:
                feats.append(v)
            elif f == 5:
                extent = v
        features = []
        for raw_f in feats:
            feat = {"id": None, "type": None, "tags": [], "geometry": []}
            for f, _, v in _fields(raw_f):
                if f == 1:
                    feat["id"] = v
                elif f == 2:
                    feat["tags"] = _packed(v)
                elif f == 3:
                    feat["type"] = v
                elif f == 4:
                    feat["geometry"] = _packed(v)
            tags = feat.pop("tags")
            feat["props"] = {keys[tags[k]]: values[tags[k + 1]] for k in range(0, len(tags), 2)}
            geometry = feat.pop("geometry")
            feat["vertices"] = _points_in(geometry)
            if feat["type"] == 1:  # POINT: the first MoveTo, zigzag-encoded from (0, 0)
                feat["point"] = tuple((v >> 1) ^ -(v & 1) for v in geometry[1:3])
            feat["coords"] = _vertices(geometry)
            features.append(feat)
        layers[name] = {"extent": extent, "features": features}
    return layers


def _vertices(geometry: list[int]) -> list[tuple[int, int]]:
    """Every vertex of a geometry command stream, in tile coordinates."""
    out, i, x, y = [], 0, 0, 0
    while i < len(geometry):
        cmd, count = geometry[i] & 7, geometry[i] >> 3
        i += 1
        if cmd in (1, 2):
            for _ in range(count):
                x += (geometry[i] >> 1) ^ -(geometry[i] & 1)
                y += (geometry[i + 1] >> 1) ^ -(geometry[i + 1] & 1)
                out.append((x, y))
                i += 2
    return out


def lonlat(z: int, x: int, y: int, px: float, py: float, extent: int = 4096) -> tuple[float, float]:
    """A tile coordinate of tile z/x/y as longitude and latitude."""
    n = 1 << z
    lon = (x + px / extent) / n * 360 - 180
    lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * (y + py / extent) / n))))
    return lon, lat
