"""What a result file records about the machine: the CPU's 8-bit vector extensions too, since
ONNX Runtime's INT8 kernels (and so an INT8 file's scores) can differ with them."""

from segrt import envinfo


def test_cpu_flags_lists_the_int8_extensions_the_cpu_reports(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse2 avx2 fma avx512f avx512_vnni\n\n"
                   "processor\t: 1\nflags\t\t: fpu sse2 avx2 fma avx512f avx512_vnni\n")
    assert envinfo.cpu_flags(str(x86)) == ["avx2", "avx512f", "avx512_vnni"]
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd asimddp i8mm\n")
    assert envinfo.cpu_flags(str(arm)) == ["asimddp", "i8mm"]
    assert envinfo.cpu_flags(str(tmp_path / "missing")) == []
    assert set(envinfo.machine()["cpu_flags"]) <= set(envinfo.INT8_FLAGS)


def test_info_names_the_cpus_8bit_extensions():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "segrt", "info"], capture_output=True, text=True, check=True).stdout
    cpu = next(line for line in out.splitlines() if line.startswith("cpu "))
    assert "8-bit extensions: " in cpu and all(flag in cpu for flag in envinfo.cpu_flags())
