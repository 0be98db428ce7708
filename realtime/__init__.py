"""The real-time loop: sources → preprocess → backend → overlay → sinks, with stage timing.

Torch-free: this package runs on a Jetson with numpy, OpenCV and TensorRT alone.
"""
