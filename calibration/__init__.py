"""INT8 calibration on real frames: what the quantiser sees is what the live loop feeds.

Calibration data are ``{input_name: float32 (N, 3, h, w)}`` batches made by the same
:class:`segrt.preprocess.Preprocessor` as the live loop, from real frames (CamVid, or the
user's own video: calibrating on the deployment domain matters more than the amount).
"""
