"""nnkit <-> numpy interoperability, run by tests/interop/run.sh.

  (a) numpy -> nnkit: every fixture of tests/fixtures/npy (written by numpy,
      see make_npy_fixtures.py) goes through tensor-convert from a path, from a
      redirected stdin and through pipes; the output must hold the manifest's
      values bit for bit, as little-endian, C-order, version 1.0 .npy that
      numpy reads. Corrupt fixtures must fail with exit 65, one line on stderr
      and no output file.
  (b) nnkit -> numpy: what tensor-convert --dtype, tensor-cat and tensor-split
      write is read with numpy and compared, bit for bit, with what numpy
      computes (astype, concatenate, array_split).
  (c) live numpy: seeded random arrays of every dtype, written by numpy in this
      run, go through `tensor-convert --to txt | tensor-convert --to npy` and
      must come back bit for bit; large arrays and long streams go through
      pipes unchanged.

Every check runs; the failures are listed at the end and the exit status is 1
if there was any. Environment: NNKIT_BIN (the tools), NNKIT_FIXTURES
(tests/fixtures), NNKIT_INTEROP_SEED (the random seed, default 20251122).
"""
import ast
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

BIN = os.environ["NNKIT_BIN"]
FIX = os.path.join(os.environ["NNKIT_FIXTURES"], "npy")
SEED = int(os.environ.get("NNKIT_INTEROP_SEED", "20251122"))
CODES = ["b1", "i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f2", "f4", "f8"]
NAMES = {"b1": "bool", "i1": "int8", "u1": "uint8", "i2": "int16", "u2": "uint16", "i4": "int32",
         "u4": "uint32", "i8": "int64", "u8": "uint64", "f2": "float16", "f4": "float32",
         "f8": "float64"}

passed = 0
failures = []


def check(ok, what):
    global passed
    if ok:
        passed += 1
    else:
        failures.append(what)
    return ok


def tool(name):
    return os.path.join(BIN, name)


def run(args, stdin=None, data=None, shell=False):
    """Runs a tool (or a shell pipeline); returns (rc, stdout bytes, stderr text).
    data is fed through a pipe; stdin may be an open file (a redirect)."""
    p = subprocess.run(args, input=data, stdin=stdin if data is None else None,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, shell=shell,
                       executable="/bin/bash" if shell else None, timeout=120)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


# --- a strict reader of nnkit's output -------------------------------------------------

class Written:
    """One array as nnkit wrote it: header facts and the array."""

    def __init__(self, version, header_len, descr, fortran, shape, array):
        self.version, self.header_len = version, header_len
        self.descr, self.fortran, self.shape, self.array = descr, fortran, shape, array


def parse_stream(b):
    """Splits the bytes of an npy stream into arrays; raises ValueError when
    the bytes are not a well-formed stream."""
    out, pos = [], 0
    while pos < len(b):
        if b[pos:pos + 6] != b"\x93NUMPY" or len(b) < pos + 10:
            raise ValueError(f"no npy magic at byte {pos}")
        major, minor = b[pos + 6], b[pos + 7]
        if major == 1:
            (hlen,), start = struct.unpack("<H", b[pos + 8:pos + 10]), pos + 10
        else:
            (hlen,), start = struct.unpack("<I", b[pos + 8:pos + 12]), pos + 12
        text = b[start:start + hlen].decode("latin1")
        d = ast.literal_eval(text)
        dt = np.lib.format.descr_to_dtype(d["descr"])
        shape = tuple(d["shape"])
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        nbytes = count * dt.itemsize
        data = b[start + hlen:start + hlen + nbytes]
        if len(data) != nbytes:
            raise ValueError(f"array at byte {pos}: {len(data)} of {nbytes} data bytes")
        a = np.frombuffer(data, dtype=dt, count=count)
        a = a.reshape(shape, order="F" if d["fortran_order"] else "C")
        out.append(Written((major, minor), hlen, d["descr"], d["fortran_order"], shape, a))
        pos = start + hlen + nbytes
    return out


def code_of(a):
    return "b1" if a.dtype.kind == "b" else a.dtype.kind + str(a.dtype.itemsize)


def le_bytes(a):
    """Little-endian C-order bytes; bools as 0/1."""
    a = np.asarray(a)
    if a.dtype.kind == "b":
        return (np.asarray(a).view("u1") != 0).astype("u1").tobytes()
    return np.array(a, dtype=a.dtype.newbyteorder("<"), order="C").tobytes()


def check_written(w, code, shape, raw, where):
    """nnkit's output array: canonical header, then exactly these values."""
    ok = check(w.version == (1, 0), f"{where}: version {w.version}, expected 1.0")
    ok &= check((w.header_len + 10) % 64 == 0, f"{where}: data starts at {w.header_len + 10}, not a multiple of 64")
    order = "|" if code in ("b1", "i1", "u1") else "<"
    ok &= check(w.descr == order + code, f"{where}: descr {w.descr!r}, expected {order + code!r}")
    ok &= check(w.fortran is False, f"{where}: fortran_order {w.fortran}")
    ok &= check(list(w.shape) == list(shape), f"{where}: shape {w.shape}, expected {tuple(shape)}")
    got = w.array.tobytes(order="C")
    if not check(got == raw, f"{where}: values differ"):
        failures[-1] += f"\n    got      {got.hex()[:160]}\n    expected {raw.hex()[:160]}"
        ok = False
    return ok


def check_output(out, arrays, where):
    """out: bytes nnkit wrote; arrays: [(code, shape, raw bytes)]."""
    try:
        ws = parse_stream(out)
    except Exception as e:  # noqa: BLE001 - any parse failure is a test failure
        check(False, f"{where}: output is not an npy stream: {e}")
        return
    if not check(len(ws) == len(arrays), f"{where}: {len(ws)} arrays written, expected {len(arrays)}"):
        return
    for i, (w, (code, shape, raw)) in enumerate(zip(ws, arrays)):
        check_written(w, code, shape, raw, f"{where} array {i}")


def np_load_all(path):
    """numpy's own reader over a (regular) file holding a stream."""
    out = []
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        while f.tell() < size:
            out.append(np.load(f))
    return out


def manifest_arrays(e):
    return [(a["dtype"], a["shape"], bytes.fromhex(a["data"])) for a in e["arrays"]]


# --- (a) numpy -> nnkit -------------------------------------------------------------------

def part_a(tmp):
    with open(os.path.join(FIX, "manifest.json")) as f:
        m = json.load(f)
    tc = tool("tensor-convert")
    for e in m["valid"]:
        name, want = e["file"], manifest_arrays(e)
        src = os.path.join(FIX, name)
        out = os.path.join(tmp, "out.npy")
        # From a path to a file (atomic -o).
        rc, _, err = run([tc, src, "-o", out])
        if check(rc == 0, f"a: tensor-convert {name} -o out.npy: exit {rc}: {err.strip()}"):
            with open(out, "rb") as f:
                check_output(f.read(), want, f"a: {name} -> file")
            # numpy's own np.load reads what nnkit wrote, array by array.
            try:
                loaded = np_load_all(out)
                check(len(loaded) == len(want), f"a: np.load of {name} output: {len(loaded)} arrays")
                for i, (a, (code, shape, raw)) in enumerate(zip(loaded, want)):
                    check(code_of(a) == code and list(a.shape) == list(shape) and le_bytes(a) == raw,
                          f"a: np.load of {name} output, array {i}: {a.dtype} {a.shape} differs")
            except Exception as ex:  # noqa: BLE001
                check(False, f"a: np.load of {name} output failed: {ex}")
            os.remove(out)
        # stdin redirected from the file, stdout a pipe.
        with open(src, "rb") as f:
            rc, out_b, err = run([tc], stdin=f)
        if check(rc == 0, f"a: tensor-convert < {name}: exit {rc}: {err.strip()}"):
            check_output(out_b, want, f"a: {name} redirect -> pipe")
        # Pipes on both sides: cat FIXTURE | tensor-convert | ...
        with open(src, "rb") as f:
            data = f.read()
        rc, out_b, err = run([tc], data=data)
        if check(rc == 0, f"a: cat {name} | tensor-convert: exit {rc}: {err.strip()}"):
            check_output(out_b, want, f"a: {name} pipe -> pipe")
        # Explicit "-" and --to npy, into a file by the shell.
        rc, _, err = run(f"cat '{src}' | '{tc}' - --to npy > '{out}'", shell=True)
        if check(rc == 0, f"a: cat {name} | tensor-convert - --to npy > out: exit {rc}: {err.strip()}"):
            with open(out, "rb") as f:
                check_output(f.read(), want, f"a: {name} cat | tensor-convert > file")
            os.remove(out)
        # numpy agrees with the manifest about the fixture itself.
        if len(want) == 1 and name != "b1_nonzero_bytes.npy":
            a = np.load(src)
            check(le_bytes(a) == want[0][2], f"a: np.load({name}) disagrees with the manifest")

    for e in m["invalid"]:
        name = e["file"]
        src = os.path.join(FIX, name)
        out = os.path.join(tmp, "bad_out.npy")
        rc, stdout, err = run([tc, src, "-o", out])
        check(rc == 65, f"a: tensor-convert {name}: exit {rc}, expected 65 ({err.strip()})")
        lines = err.splitlines()
        check(len(lines) == 1 and lines[0].startswith("tensor-convert: error: "),
              f"a: tensor-convert {name}: stderr is not one 'tensor-convert: error: ' line: {err!r}")
        for word in e["error"]:
            check(word.lower() in err.lower(), f"a: tensor-convert {name}: message lacks {word!r}: {err.strip()}")
        check(not os.path.exists(out), f"a: tensor-convert {name} -o: left an output file")
        leftovers = [f for f in os.listdir(tmp) if "nnkit" in f]
        check(not leftovers, f"a: tensor-convert {name} -o: left temporaries {leftovers}")
        with open(src, "rb") as f:
            rc, _, err = run([tc], data=f.read())
        check(rc == 65, f"a: cat {name} | tensor-convert: exit {rc}, expected 65 ({err.strip()})")
        check(len(err.splitlines()) == 1, f"a: cat {name} | tensor-convert: stderr {err!r}")


# --- (b) nnkit -> numpy -------------------------------------------------------------------

def save(path, *arrays):
    with open(path, "wb") as f:
        for a in arrays:
            np.lib.format.write_array(f, np.asarray(a), allow_pickle=False)


def expect_arrays(out, arrays, where):
    check_output(out, [(code_of(a), list(a.shape), le_bytes(a)) for a in arrays], where)


def part_b(tmp):
    tc, cat, split = tool("tensor-convert"), tool("tensor-cat"), tool("tensor-split")
    p = lambda n: os.path.join(tmp, n)  # noqa: E731

    # --dtype X against numpy's astype. Sources chosen so that every value fits
    # the targets they go to (nnkit refuses, where numpy wraps, out-of-range
    # integer casts; that refusal is checked below).
    sources = {
        "small_f8": (np.array([0, 1.5, 2.9, 127.0, 100.25, 7.99, 0.5, -0.0, 3], dtype="<f8"), CODES),
        "neg_f8": (np.array([-128.0, -1.9, -0.5, 0.0, 1.2, 127.9], dtype=">f8"),
                   ["b1", "i1", "i2", "i4", "i8", "f2", "f4", "f8"]),
        "odd_f8": (np.array([np.nan, np.inf, -np.inf, 1e300, -1e-300, 5e-324, 65519.99, 65520.0,
                             1 + 2**-11 + 2**-40, 2049 + 2**-30, 2**-25 + 2**-40, 0.1, 3.4028235677973366e38],
                            dtype="<f8"), ["b1", "f2", "f4", "f8"]),
        "odd_f4": (np.array([np.nan, np.inf, -1e-45, 1 + 2**-11 + 2**-20, 65519.0, 0.1, 6e-8, 3e-8],
                            dtype="<f4"), ["b1", "f2", "f4", "f8"]),
        "f2": (np.array([1.0, -2.5, 65504.0, -0.0, 6e-8, np.inf, np.nan], dtype="<f2"),
               ["b1", "f2", "f4", "f8"]),
        "f2_ints": (np.array([1.0, -2.5, 100.7, -0.0, 127.0, -128.0], dtype=">f2"),
                    ["i1", "i2", "i4", "i8"]),
        "i8": (np.array([-128, -1, 0, 1, 127, 100], dtype="<i8"), CODES[:1] + ["i1", "i2", "i4", "i8", "f2", "f4", "f8"]),
        "i8_big": (np.array([2**53 + 1, -(2**53 + 1), 2**24 + 1, 2**63 - 1, -2**63, 65519, 65520, 2049, 2051],
                            dtype="<i8"), ["b1", "i8", "f2", "f4", "f8"]),
        "u8_big": (np.array([2**64 - 1, 2**63 + 1, 2**53 + 1, 0], dtype=">u8"), ["b1", "u8", "f2", "f4", "f8"]),
        "u1": (np.array([0, 1, 127, 128, 255], dtype="u1"), [c for c in CODES if c != "i1"]),
        "u1_small": (np.array([0, 1, 127, 100], dtype="u1"), CODES),
        "u4": (np.array([0, 2**31, 2**32 - 1, 2**24 + 1], dtype="<u4"), ["b1", "u4", "i8", "u8", "f2", "f4", "f8"]),
        "b1": (np.array([True, False, True]), CODES),
    }
    for sname, (src, targets) in sources.items():
        save(p("src.npy"), src)
        for t in targets:
            with np.errstate(all="ignore"):
                want = src.astype(NAMES[t])
            rc, out, err = run([tc, "--dtype", NAMES[t], p("src.npy")], data=None, stdin=subprocess.DEVNULL)
            if check(rc == 0, f"b: tensor-convert --dtype {NAMES[t]} ({sname}): exit {rc}: {err.strip()}"):
                expect_arrays(out, [want], f"b: {sname} --dtype {NAMES[t]} vs numpy astype")
    # Documented refusals: integer casts that do not fit.
    for values, t in [([np.nan], "int32"), ([np.inf], "int64"), ([300.0], "uint8"), ([-1.0], "uint64"),
                      ([2.0**63], "int64"), ([128.0], "int8")]:
        save(p("src.npy"), np.array(values, dtype="<f8"))
        rc, out, err = run([tc, "--dtype", t, p("src.npy"), "-o", p("refused.npy")])
        check(rc == 65 and not os.path.exists(p("refused.npy")),
              f"b: tensor-convert --dtype {t} of {values}: exit {rc}, expected 65 and no output")

    # tensor-cat against np.concatenate.
    rng = np.random.default_rng(SEED)
    cases = [
        (0, [(3, 4), (2, 4), (0, 4), (1, 4)]),
        (1, [(3, 2), (3, 5), (3, 0)]),
        (-1, [(2, 3, 1), (2, 3, 4)]),
        (1, [(2, 1, 3), (2, 2, 3)]),
        (0, [(5,), (0,), (2,)]),
    ]
    for code in ["f4", "f8", "f2", "i8", "u1", "b1", "i2"]:
        for axis, shapes in cases:
            parts = [random_array(rng, code, s) for s in shapes]
            files = []
            for i, a in enumerate(parts):
                files.append(p(f"cat{i}.npy"))
                save(files[-1], a)
            want = np.concatenate(parts, axis=axis)
            where = f"b: tensor-cat --axis {axis} {code} {shapes}"
            rc, out, err = run([cat, "--axis", str(axis)] + files)
            if check(rc == 0, f"{where}: exit {rc}: {err.strip()}"):
                expect_arrays(out, [want], where)
            # One input a stream on stdin ("-") between files.
            with open(p("stream.npy"), "wb") as f:
                for fn in files[1:]:
                    with open(fn, "rb") as g:
                        f.write(g.read())
            rc, out, err = run(f"cat '{p('stream.npy')}' | '{cat}' --axis {axis} '{files[0]}' - -o '{p('joined.npy')}'",
                               shell=True)
            if check(rc == 0, f"{where} (stdin stream): exit {rc}: {err.strip()}"):
                with open(p("joined.npy"), "rb") as f:
                    expect_arrays(f.read(), [want], where + " (stdin stream)")
                check(np.array_equal(np.load(p("joined.npy")), want, equal_nan=code[0] == "f"),
                      f"{where}: np.load of -o output differs")

    # tensor-split against np.array_split.
    for code in ["f4", "i8", "u2", "b1"]:
        for length in [0, 1, 5, 7, 10]:
            a = random_array(rng, code, (length, 3))
            save(p("x.npy"), a)
            for n in [1, 2, 3, 4, 8]:
                want = np.array_split(a, n, axis=0)
                got_all = []
                for k in range(n):
                    where = f"b: tensor-split --part {k}/{n} {code} {a.shape}"
                    rc, out, err = run([split, "--part", f"{k}/{n}", p("x.npy")])
                    if check(rc == 0, f"{where}: exit {rc}: {err.strip()}"):
                        expect_arrays(out, [want[k]], where + " vs np.array_split")
                        got_all.append(out)
                # The parts concatenate back to the input.
                if len(got_all) == n:
                    rc, out, err = run([cat], data=b"".join(got_all))
                    if check(rc == 0, f"b: cat parts | tensor-cat ({code} {a.shape} /{n}): exit {rc}: {err.strip()}"):
                        expect_arrays(out, [a], f"b: parts of {code} {a.shape} /{n} rejoined")
                # --parts N: the N parts as one stream.
                rc, out, err = run([split, "--parts", str(n), p("x.npy")])
                if check(rc == 0, f"b: tensor-split --parts {n}: exit {rc}: {err.strip()}"):
                    expect_arrays(out, want, f"b: tensor-split --parts {n} {code} {a.shape} vs np.array_split")
    # Other axes, a stream input, and --prefix files.
    a = random_array(rng, "f4", (2, 7, 5))
    b = random_array(rng, "i4", (3, 7, 4))
    save(p("ab.npy"), a, b)
    for axis in [1, -2]:
        for n in [2, 3, 7, 9]:
            for k in range(n):
                where = f"b: tensor-split --axis {axis} --part {k}/{n} (stream of 2)"
                rc, out, err = run(f"cat '{p('ab.npy')}' | '{split}' --axis={axis} --part {k}/{n}", shell=True)
                if check(rc == 0, f"{where}: exit {rc}: {err.strip()}"):
                    expect_arrays(out, [np.array_split(a, n, axis=axis)[k], np.array_split(b, n, axis=axis)[k]], where)
    a = random_array(rng, "f8", (4, 10))
    save(p("x.npy"), a)
    rc, _, err = run([split, "--parts", "3", "--axis", "-1", "--prefix", p("shard_"), p("x.npy")])
    if check(rc == 0, f"b: tensor-split --parts 3 --prefix: exit {rc}: {err.strip()}"):
        for k, want in enumerate(np.array_split(a, 3, axis=-1)):
            fn = p(f"shard_{k}.npy")
            if check(os.path.exists(fn), f"b: tensor-split --prefix: {fn} missing"):
                got = np.load(fn)
                check(got.shape == want.shape and le_bytes(got) == le_bytes(want),
                      f"b: np.load({os.path.basename(fn)}) differs from np.array_split part {k}")


# --- (c) live numpy ------------------------------------------------------------------------

def random_array(rng, code, shape):
    """Random values over the whole range of the dtype; floats from random
    bits (subnormals, huge and tiny values), with inf, -inf, -0.0 and a
    canonical NaN sprinkled in (NaN payloads cannot survive text)."""
    dt = np.dtype("<" + code) if code != "b1" else np.dtype(bool)
    n = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if code == "b1":
        v = rng.integers(0, 2, n).astype(bool)
    elif dt.kind in "iu":
        info = np.iinfo(dt)
        v = rng.integers(info.min, info.max, n, dtype=dt, endpoint=True)
        if n >= 2:
            v[:2] = [info.min, info.max]
    else:
        ut = {2: "<u2", 4: "<u4", 8: "<u8"}[dt.itemsize]
        bits = rng.integers(0, np.iinfo(ut).max, n, dtype=ut, endpoint=True)
        v = bits.view(dt).copy()
        v[np.isnan(v)] = np.nan
        specials = np.array([np.inf, -np.inf, -0.0, np.nan, 0.0, 1.0], dtype=dt)
        k = min(n, len(specials))
        pos = rng.choice(n, k, replace=False) if n else []
        v[pos] = specials[:k]
    return v.reshape(shape)


def part_c(tmp):
    tc = tool("tensor-convert")
    rng = np.random.default_rng(SEED + 1)
    shapes = [(), (1,), (7,), (3, 4), (1, 5), (5, 1), (2, 3, 4), (0,), (3, 0), (2, 1, 2, 3)]
    for code in CODES:
        for shape in shapes:
            a = random_array(rng, code, shape)
            buf = npy_bytes(a)
            for fmt in ["txt", "csv"]:
                where = f"c: {code} {shape} | tensor-convert --to {fmt} | tensor-convert --to npy --dtype {NAMES[code]}"
                rc, out, err = run(f"'{tc}' --to {fmt} | '{tc}' --to npy --dtype {NAMES[code]}", data=buf, shell=True)
                if check(rc == 0, f"{where}: exit {rc}: {err.strip()}"):
                    expect_arrays(out, [a], where + " (bit-exact round trip)")
            # float32 needs no --dtype: text with a fraction reads as float32,
            # all-integer text as int64.
            if code in ("f4", "i8") and a.size:
                where = f"c: {code} {shape} | tensor-convert --to txt | tensor-convert"
                rc, out, err = run(f"'{tc}' --to txt | '{tc}'", data=buf, shell=True)
                if check(rc == 0, f"{where}: exit {rc}: {err.strip()}"):
                    expect_arrays(out, [a], where)
    # Identity through pipes: a 16 MB array, and a stream of 200 random arrays
    # (buffer boundaries fall everywhere).
    big = random_array(rng, "f4", (1000, 4000))
    rc, out, err = run([tc], data=npy_bytes(big))
    if check(rc == 0, f"c: 16 MB float32 | tensor-convert: exit {rc}: {err.strip()}"):
        expect_arrays(out, [big], "c: 16 MB float32 through a pipe")
    arrays = []
    for i in range(200):
        code = CODES[i % len(CODES)]
        shape = tuple(int(d) for d in rng.integers(0, 5, rng.integers(0, 4)))
        a = random_array(rng, code, shape)
        if i % 3 == 1 and a.ndim >= 2:
            a = np.asfortranarray(a)
        if i % 4 == 2 and a.dtype.itemsize > 1:
            a = a.astype(a.dtype.newbyteorder(">"))
        arrays.append(a)
    stream = b"".join(npy_bytes(a) for a in arrays)
    rc, out, err = run(f"cat | '{tc}' | cat", data=stream, shell=True)
    if check(rc == 0, f"c: stream of 200 | tensor-convert: exit {rc}: {err.strip()}"):
        expect_arrays(out, arrays, "c: stream of 200 arrays through pipes")


def npy_bytes(a):
    b = io.BytesIO()
    np.lib.format.write_array(b, a, allow_pickle=False)
    return b.getvalue()


def main():
    for x in ["tensor-convert", "tensor-cat", "tensor-split"]:
        if not os.access(tool(x), os.X_OK):
            print(f"interop: {tool(x)} is missing (NNKIT_BIN={BIN})", file=sys.stderr)
            return 1
    tmp = tempfile.mkdtemp(prefix="nnkit_interop_")
    try:
        for name, part in [("a numpy->nnkit", part_a), ("b nnkit->numpy", part_b), ("c live numpy", part_c)]:
            before_p, before_f = passed, len(failures)
            part(tmp)
            print(f"interop ({name}): {passed - before_p} checks passed, {len(failures) - before_f} failed")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print(f"\ninterop: {len(failures)} FAILED (numpy {np.__version__}, seed {SEED}):", file=sys.stderr)
        for f in failures[:60]:
            print("  " + f, file=sys.stderr)
        if len(failures) > 60:
            print(f"  ... and {len(failures) - 60} more", file=sys.stderr)
        return 1
    print(f"interop: all {passed} checks passed (numpy {np.__version__}, seed {SEED})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
