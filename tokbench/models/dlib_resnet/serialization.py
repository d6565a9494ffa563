"""Reader for dlib's serialized face-recognition network (``dlib_face_recognition_resnet_model_v1.dat``).

dlib writes a network as nested objects from the loss layer inwards: each wrapper writes its own version,
then its sub-network, then (on the way back out) its layer's details. The stream does not name wrapper
types (a ``tag`` and a ``skip`` both write version 1), so, like dlib's own deserializer, the reader walks a
known architecture (``architecture``) and checks every version string, shape and hyper-parameter it meets
against it. Any mismatch or a short read is one ``BadInputError`` naming the file.

Encodings (dlib/serialize.h): an integer is a control byte (low nibble = byte count, 0x80 = negative)
followed by that many little-endian bytes; a float is two such integers, mantissa then exponent
(value = mantissa * 2**exponent, with exponents 32000/32001/32002 for +inf/-inf/nan); a bool is the ASCII
byte '1' or '0'; a string is its length then its bytes; a tensor is version 2, four sizes and raw
little-endian float32 data; an alias tensor (a view into a layer's parameters) is version 1 and four sizes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tokbench.errors import BadInputError

CONV_MODE, FC_NO_BIAS = 0, 1  # dlib's layer_mode::CONV_MODE and fc_bias_mode::FC_NO_BIAS
_FLOAT_SPECIAL = {32000: math.inf, 32001: -math.inf, 32002: math.nan}


class _Corrupt(Exception):
    """Raised inside the reader; turned into one BadInputError naming the file."""


@dataclass(frozen=True)
class LayerSpec:
    """One layer of the expected architecture, in forward order."""

    kind: str  # input, con, affine, relu, max_pool, avg_pool, tag, skip, add_prev, fc, loss
    out_channels: int = 0  # con / fc
    size: int = 0  # window or filter side (0 = whole input, dlib's avg_pool_everything)
    stride: int = 1
    ident: int = 0  # tag / skip / add_prev id


@dataclass
class Layer:
    """A parsed layer: its spec plus the arrays forward inference needs (float32, dlib's layouts)."""

    spec: LayerSpec
    padding: int = 0
    weight: np.ndarray | None = None  # con: (out, in, k, k); affine: gamma (C,); fc: (in, out)
    bias: np.ndarray | None = None  # con: (out,); affine: beta (C,)
    extra: dict = field(default_factory=dict)


def default_padding(size: int, stride: int) -> int:
    """dlib's default for con_ / max_pool_ / avg_pool_: half the window at stride 1, none otherwise."""
    return size // 2 if stride == 1 else 0


def architecture() -> list[LayerSpec]:
    """dlib's face-recognition ResNet (``anet_type`` of dnn_face_recognition_ex.cpp), input first.

    A residual unit at stride 1: tag1, con3 + affine + relu, con3 + affine, add the tag1 output, relu.
    A down-sampling unit: tag1, con3/2 + affine + relu, con3 + affine, tag2, skip back to tag1, avg_pool 2/2
    of that, add the tag2 output (dlib's add_prev zero-pads the smaller operand), relu.
    """
    layers = [LayerSpec("input"), LayerSpec("con", 32, 7, 2), LayerSpec("affine"), LayerSpec("relu"),
              LayerSpec("max_pool", size=3, stride=2)]

    def unit(n: int, down: bool) -> list[LayerSpec]:
        block = [LayerSpec("tag", ident=1), LayerSpec("con", n, 3, 2 if down else 1), LayerSpec("affine"),
                 LayerSpec("relu"), LayerSpec("con", n, 3, 1), LayerSpec("affine")]
        if down:
            block += [LayerSpec("tag", ident=2), LayerSpec("skip", ident=1), LayerSpec("avg_pool", size=2, stride=2),
                      LayerSpec("add_prev", ident=2)]
        else:
            block += [LayerSpec("add_prev", ident=1)]
        return block + [LayerSpec("relu")]

    for n, count, down in ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True)):
        for i in range(count):
            layers += unit(n, down and i == 0)
    return layers + [LayerSpec("avg_pool", size=0, stride=1), LayerSpec("fc", 128), LayerSpec("loss")]


class _Reader:
    def __init__(self, data: bytes):
        self.data = memoryview(data)
        self.pos = 0

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise _Corrupt(f"unexpected end of file at byte {self.pos} (wanted {n} more bytes)")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def int(self, what: str) -> int:
        start = self.pos
        control = self.take(1)[0]
        size = control & 0x0F
        if control & 0x70 or not 1 <= size <= 8:
            raise _Corrupt(f"bad integer control byte 0x{control:02x} for {what} at byte {start}")
        value = int.from_bytes(self.take(size), "little")
        return -value if control & 0x80 else value

    def float(self, what: str) -> float:
        mantissa, exponent = self.int(what), self.int(what)
        if exponent in _FLOAT_SPECIAL:
            return _FLOAT_SPECIAL[exponent]
        return math.ldexp(mantissa, exponent)

    def bool(self, what: str) -> bool:
        ch = bytes(self.take(1))
        if ch not in (b"0", b"1"):
            raise _Corrupt(f"bad bool byte {ch!r} for {what} at byte {self.pos - 1}")
        return ch == b"1"

    def string(self, what: str, limit: int = 256) -> str:
        n = self.int(what)
        if not 0 <= n <= limit:
            raise _Corrupt(f"implausible string length {n} for {what} at byte {self.pos}")
        try:
            return bytes(self.take(n)).decode("ascii")
        except UnicodeDecodeError:
            raise _Corrupt(f"non-ASCII {what} at byte {self.pos - n}") from None

    def version(self, what: str, allowed) -> int | str:
        got = self.string(what) if isinstance(next(iter(allowed)), str) else self.int(what)
        if got not in allowed:
            raise _Corrupt(f"{what}: version {got!r}, expected one of {sorted(allowed, key=str)}")
        return got

    def tensor(self, what: str) -> np.ndarray:
        self.version(f"{what} tensor", {2})
        shape = tuple(self.int(what) for _ in range(4))
        if any(s < 0 for s in shape):
            raise _Corrupt(f"negative tensor size {shape} for {what}")
        count = math.prod(shape)
        return np.frombuffer(self.take(4 * count), dtype="<f4").astype(np.float32).reshape(shape)

    def alias(self, what: str) -> tuple[int, int, int, int]:
        self.version(f"{what} alias tensor", {1})
        return tuple(self.int(what) for _ in range(4))


def _expect(cond: bool, message: str) -> None:
    if not cond:
        raise _Corrupt(message)


def _multipliers(r: _Reader, what: str, n: int = 4) -> None:
    for _ in range(n):
        r.float(f"{what} learning-rate/weight-decay multiplier")


def _read_con(r: _Reader, spec: LayerSpec, in_channels: int, where: str) -> Layer:
    version = r.version(f"{where} con", {"con_4", "con_5", "con_6"})
    params = r.tensor(f"{where} con params")
    filters, nr, nc = r.int(where), r.int(where), r.int(where)
    sy, sx, py, px = (r.int(where) for _ in range(4))
    pad = default_padding(spec.size, spec.stride)
    _expect((filters, nr, nc, sy, sx, py, px) == (spec.out_channels, spec.size, spec.size, spec.stride,
                                                   spec.stride, pad, pad),
            f"{where}: con has filters/size/stride/padding {(filters, nr, nc, sy, sx, py, px)}, expected "
            f"{(spec.out_channels, spec.size, spec.size, spec.stride, spec.stride, pad, pad)}")
    fshape, bshape = r.alias(f"{where} con filters"), r.alias(f"{where} con biases")
    _multipliers(r, f"{where} con")
    use_bias = r.bool(f"{where} con use_bias") if version in ("con_5", "con_6") else True
    use_relu = r.bool(f"{where} con use_relu") if version == "con_6" else False
    _expect(fshape == (filters, in_channels, nr, nc),
            f"{where}: con filters {fshape}, expected {(filters, in_channels, nr, nc)}")
    _expect(not use_relu, f"{where}: con with a fused relu is not part of this architecture")
    nb = filters if use_bias else 0
    _expect(bshape == (1, filters, 1, 1) if use_bias else math.prod(bshape) == 0, f"{where}: con biases {bshape}")
    flat = params.ravel()
    _expect(flat.size == math.prod(fshape) + nb, f"{where}: con has {flat.size} parameters, expected "
                                                 f"{math.prod(fshape) + nb}")
    weight = flat[:math.prod(fshape)].reshape(fshape)
    bias = flat[math.prod(fshape):] if use_bias else np.zeros(filters, np.float32)
    return Layer(spec, pad, weight.copy(), bias.copy(), {"version": version})


def _read_affine(r: _Reader, spec: LayerSpec, channels: int, where: str) -> Layer:
    version = r.version(f"{where} affine", {"affine_", "affine_2", "bn_con2"})
    params = r.tensor(f"{where} {version} params").ravel()
    gshape, bshape = r.alias(f"{where} gamma"), r.alias(f"{where} beta")
    _expect(gshape == bshape == (1, channels, 1, 1), f"{where}: {version} gamma/beta {gshape}/{bshape}, "
                                                     f"expected {(1, channels, 1, 1)} (per-channel)")
    _expect(params.size == 2 * channels, f"{where}: {version} has {params.size} parameters, expected {2 * channels}")
    gamma, beta = params[:channels], params[channels:]
    if version == "bn_con2":
        # dlib's affine_(bn_) conversion, in float32 as dlib computes it: g / sqrt(var + eps), b - g' * mean
        for name in ("means", "invstds"):
            r.tensor(f"{where} bn {name}")
        means = r.tensor(f"{where} bn running_means").ravel()
        variances = r.tensor(f"{where} bn running_variances").ravel()
        _expect(means.size == variances.size == channels, f"{where}: bn running statistics of size "
                                                           f"{means.size}/{variances.size}, expected {channels}")
        r.int(f"{where} bn num_updates"), r.int(f"{where} bn running_stats_window_size")
        _multipliers(r, f"{where} bn")
        eps = np.float32(r.float(f"{where} bn eps"))
        gamma = gamma / np.sqrt(variances + eps)
        beta = beta - gamma * means
        disabled = False
    else:
        mode = r.int(f"{where} affine mode")
        _expect(mode == CONV_MODE, f"{where}: affine in mode {mode}, expected per-channel (CONV_MODE)")
        disabled = r.bool(f"{where} affine disabled") if version == "affine_2" else False
    _expect(not disabled, f"{where}: a disabled affine layer is not part of this architecture")
    return Layer(spec, 0, gamma.astype(np.float32).copy(), beta.astype(np.float32).copy(), {"version": version})


def _read_pool(r: _Reader, spec: LayerSpec, where: str) -> Layer:
    kind = spec.kind
    r.version(f"{where} {kind}", {f"{kind}_2"})
    nr, nc, sy, sx, py, px = (r.int(where) for _ in range(6))
    pad = default_padding(spec.size, spec.stride) if spec.size else 0
    expected = (spec.size, spec.size, spec.stride, spec.stride, pad, pad)
    _expect((nr, nc, sy, sx, py, px) == expected,
            f"{where}: {kind} window/stride/padding {(nr, nc, sy, sx, py, px)}, expected {expected}")
    return Layer(spec, pad)


def _read_details(r: _Reader, spec: LayerSpec, channels: int, where: str) -> tuple[Layer, int]:
    """One layer's details; returns it and its output channel count."""
    if spec.kind == "con":
        return _read_con(r, spec, channels, where), spec.out_channels
    if spec.kind == "affine":
        return _read_affine(r, spec, channels, where), channels
    if spec.kind == "relu":
        version = r.version(f"{where} relu", {"relu_", "relu_2"})
        _expect(version == "relu_" or not r.bool(f"{where} relu disabled"),
                f"{where}: a disabled relu is not part of this architecture")
        return Layer(spec), channels
    if spec.kind in ("max_pool", "avg_pool"):
        return _read_pool(r, spec, where), channels
    if spec.kind == "add_prev":
        r.version(f"{where} add_prev", {"add_prev_"})
        return Layer(spec), None  # channels: resolved by the caller (max of both operands)
    if spec.kind == "fc":
        version = r.version(f"{where} fc", {"fc_2", "fc_3"})
        outputs, inputs = r.int(where), r.int(where)
        params = r.tensor(f"{where} fc params")
        wshape, bshape = r.alias(f"{where} fc weights"), r.alias(f"{where} fc biases")
        mode = r.int(f"{where} fc bias mode")
        _multipliers(r, f"{where} fc")
        if version == "fc_3":
            r.bool(f"{where} fc use_bias")
        _expect((outputs, inputs, mode) == (spec.out_channels, channels, FC_NO_BIAS),
                f"{where}: fc outputs/inputs/bias mode {(outputs, inputs, mode)}, expected "
                f"{(spec.out_channels, channels, FC_NO_BIAS)}")
        _expect(wshape == (inputs, outputs, 1, 1) and params.size == inputs * outputs,
                f"{where}: fc weights {wshape} with {params.size} parameters, expected {(inputs, outputs, 1, 1)}")
        return Layer(spec, 0, params.ravel().reshape(inputs, outputs).copy(), None, {"version": version}), outputs
    raise _Corrupt(f"{where}: no reader for layer kind {spec.kind!r}")


def _read_add_layer_tail(r: _Reader, version: int, where: str) -> None:
    """The bookkeeping dlib's add_layer writes after a layer's details (training state; unused here)."""
    for name in ("this_layer_setup_called", "gradient_input_is_stale", "get_output_and_gradient_input_disabled"):
        r.bool(f"{where} {name}")
    r.tensor(f"{where} x_grad"), r.tensor(f"{where} cached_output")
    if version >= 2:
        r.tensor(f"{where} gradient")


@dataclass
class DlibNetwork:
    """The parsed network: layers in forward order (tag/skip/add_prev kept as markers) and the input means."""

    layers: list[Layer]
    input_means: tuple[float, float, float]  # avg_red, avg_green, avg_blue (float32 values)
    input_size: int
    loss: dict

    def parameter_count(self) -> int:
        return sum(int(a.size) for layer in self.layers for a in (layer.weight, layer.bias) if a is not None)


def parse(data: bytes, source: str = "<bytes>", specs: list[LayerSpec] | None = None) -> DlibNetwork:
    """Parse ``data`` against ``specs`` (default: the face-recognition ResNet); anything else is one
    BadInputError naming ``source``."""
    try:
        return _parse(data, specs or architecture())
    except _Corrupt as e:
        raise BadInputError(f"{source}: not dlib's face-recognition ResNet (dlib_face_recognition_resnet_model_v1 "
                            f"layout): {e}") from None


def _parse(data: bytes, specs: list[LayerSpec]) -> DlibNetwork:
    _expect(specs[0].kind == "input" and specs[1].kind == "con" and specs[-1].kind == "loss",
            "architecture must run input, con ... loss")
    r = _Reader(data)
    r.version("add_loss_layer", {1})
    loss_version = r.version("loss layer", {"loss_metric_", "loss_metric_2"})
    loss = {"version": loss_version}
    if loss_version == "loss_metric_2":
        loss.update(margin=r.float("loss margin"), distance_threshold=r.float("loss distance threshold"))
    # wrapper versions, outermost first: add_layer 2 (or 1), tag / skip 1; the innermost add_layer holds the input
    middle = specs[2:-1]
    versions = []
    for i, spec in reversed(list(enumerate(middle, start=2))):
        where = f"layer {len(specs) - 1 - i} ({spec.kind})"
        if spec.kind in ("tag", "skip"):
            r.version(f"{where} {spec.kind} wrapper", {1})
            versions.append(None)
        else:
            versions.append(r.version(f"{where} add_layer", {1, 2}))
    versions.reverse()
    where = f"layer {len(specs) - 2} (con on the input)"
    input_version = r.version(f"{where} add_layer", {2, 3})
    r.version("input layer", {"input_rgb_image_sized"})
    means = tuple(float(np.float32(r.float("input mean"))) for _ in range(3))
    nr, nc = r.int("input rows"), r.int("input columns")
    _expect(nr == nc == 150, f"input layer is {nr}x{nc}, expected 150x150")
    first, channels = _read_details(r, specs[1], 3, where)
    for name in ("this_layer_setup_called", "gradient_input_is_stale", "get_output_and_gradient_input_disabled"):
        r.bool(f"{where} {name}")
    for name in ("x_grad", "cached_output", "grad_final"):
        r.tensor(f"{where} {name}")
    if input_version >= 3:
        r.int(f"{where} sample expansion factor")
    layers = [Layer(specs[0]), first]
    tags: dict[int, int] = {}  # tag id -> channels at that tag
    for i, (spec, version) in enumerate(zip(middle, versions), start=2):
        where = f"layer {len(specs) - 1 - i} ({spec.kind})"
        if spec.kind == "tag":
            tags[spec.ident] = channels
            layers.append(Layer(spec))
            continue
        if spec.kind == "skip":
            _expect(spec.ident in tags, f"{where}: skip to tag{spec.ident} before it")
            channels = tags[spec.ident]
            layers.append(Layer(spec))
            continue
        layer, out = _read_details(r, spec, channels, where)
        if spec.kind == "add_prev":
            _expect(spec.ident in tags, f"{where}: add_prev of tag{spec.ident} before it")
            out = max(channels, tags[spec.ident])
        channels = out
        _read_add_layer_tail(r, version, where)
        layers.append(layer)
    layers.append(Layer(specs[-1], extra=loss))
    _expect(r.pos == len(r.data), f"{len(r.data) - r.pos} unread bytes after the network")
    return DlibNetwork(layers, means, nr, loss)


def load(path: str | Path) -> DlibNetwork:
    """Parse a dlib face-recognition network file; a wrong or damaged file is one BadInputError naming it."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise BadInputError(f"{path}: cannot read dlib network file ({e.strerror})") from None
    return parse(data, str(path))
