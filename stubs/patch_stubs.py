"""Regenerates the vendored TensorRT stubs from the published ``tensorrt-stubs`` wheel.

    pip download tensorrt-stubs==10.13.0.35.1 --no-deps -d /tmp/w && python stubs/patch_stubs.py /tmp/w/*.whl

The published stubs describe TensorRT 10.13. Patched here: parameters named ``in`` (a Python
keyword, so mypy cannot parse the file) become ``in_``, and every API TensorRT 11 removed is
deleted, so code that type-checks against these stubs runs on TensorRT 10 (Jetson) and 11.
"""

from __future__ import annotations

import re
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).parent
# TensorRT 11.x migration guide, "Removed Python APIs and Replacements"
REMOVED_CLASSES = ["IInt8Calibrator", "IInt8EntropyCalibrator", "IInt8EntropyCalibrator2", "IInt8LegacyCalibrator",
                   "IInt8MinMaxCalibrator", "CalibrationAlgoType", "IAlgorithm", "IAlgorithmContext",
                   "IAlgorithmIOInfo", "IAlgorithmSelector", "IAlgorithmVariant", "QuantizationFlag"]
REMOVED_MEMBERS = {
    "BuilderFlag": ["FP16", "INT8", "FP8", "BF16", "INT4", "FP4", "OBEY_PRECISION_CONSTRAINTS",
                    "PREFER_PRECISION_CONSTRAINTS", "DIRECT_IO"],
    "IBuilderConfig": ["int8_calibrator", "algorithm_selector", "set_calibration_profile", "get_calibration_profile",
                       "set_quantization_flag", "get_quantization_flag", "clear_quantization_flag",
                       "quantization_flags"],
    "ICudaEngine": ["device_memory_size"],
    "Builder": ["platform_has_fast_fp16", "platform_has_fast_int8"],
}


def drop_class(lines: list[str], name: str) -> list[str]:
    out, skipping = [], False
    for ln in lines:
        if re.match(rf"class {name}\b", ln):
            skipping = True
            continue
        if skipping and ln and not ln[0].isspace():
            skipping = False
        if not skipping:
            out.append(ln)
    return out


def drop_member(lines: list[str], cls: str, name: str) -> list[str]:
    out: list[str] = []
    in_cls = skipping = False
    for ln in lines:
        if ln and not ln[0].isspace():
            in_cls = bool(re.match(rf"class {cls}\b", ln))
            skipping = False
        if in_cls and re.match(rf"    (def {name}\(|{name}\s*:)", ln):
            while out and out[-1].startswith("    @"):  # its decorators
                out.pop()
            skipping = True
            continue
        if skipping and re.match(r"    \S", ln):  # the next member (docstrings have blank lines)
            skipping = False
        if not skipping:
            out.append(ln)
    return out


def fix_defaults(line: str) -> str:
    """``def f(a: X = None, b: int)`` is not valid Python: later parameters get ``= ...``."""
    m = re.match(r"(\s*def \w+\()(.*)(\) -> .*)$", line)
    if not m or "=" not in m.group(2):
        return line
    params, seen_default = [], False
    for p in m.group(2).split(", "):
        if "=" in p:
            seen_default = True
        elif seen_default and ":" in p and not p.startswith("*"):
            p += " = ..."
        params.append(p)
    return m.group(1) + ", ".join(params) + m.group(3)


def patch(text: str) -> str:
    text = re.sub(r"\bin: ", "in_: ", text)
    text = "\n".join(fix_defaults(ln) for ln in text.split("\n"))
    lines = text.split("\n")
    for c in REMOVED_CLASSES:
        lines = drop_class(lines, c)
    for cls, names in REMOVED_MEMBERS.items():
        for n in names:
            lines = drop_member(lines, cls, n)
    text = "\n".join(lines)
    for c in REMOVED_CLASSES:
        text = text.replace(f"'{c}', ", "")
    return text


def main(wheel: str) -> None:
    with zipfile.ZipFile(wheel) as z:
        for member in ("tensorrt/__init__.pyi", "tensorrt_bindings/__init__.pyi", "tensorrt_bindings/tensorrt.pyi"):
            text = z.read(member).decode().replace("\r\n", "\n")
            text = "\n".join(ln for ln in text.split("\n")
                             if not any(re.search(rf"import {c}\s*$", ln) for c in REMOVED_CLASSES))
            text = patch(text)
            (HERE / member).parent.mkdir(parents=True, exist_ok=True)
            (HERE / member).write_text(text)


if __name__ == "__main__":
    main(sys.argv[1])
