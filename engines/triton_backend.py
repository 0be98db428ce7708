"""A model served by Triton Inference Server: ``--model triton://HOST:PORT/NAME``.

The server holds the model (``segrt export-triton`` wrote its repository); segrt sends the
preprocessed float32 batch and gets the uint8 label map back, over HTTP (default, port 8000)
or gRPC (``triton://HOST:8001/NAME?protocol=grpc``). The model's segrt manifest comes from its
served configuration (parameter ``segrt_manifest``), checked like a manifest file. Concurrent
clients (several ``segrt run`` processes, several machines) are merged into one model call by
Triton's dynamic batcher; one run with several sources batches its own streams first.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np

from segrt.engines.base import InputBuffer
from segrt.engines.manifest import ModelManifest, manifest_from_text
from segrt.engines.remote import RemoteModel
from segrt.errors import ModelError, SegrtError, first_line
from segrt.files import shown


def parse_uri(uri: str) -> tuple[str, str, str]:
    """``triton://HOST:PORT/NAME[?protocol=grpc]`` → (``HOST:PORT``, NAME, protocol)."""
    usage = "expected triton://HOST[:PORT]/MODEL[?protocol=grpc], e.g. triton://localhost:8000/fpn_lite0_camvid"
    try:
        u = urlparse(uri)
        host, port = u.hostname, u.port  # urllib raises ValueError for a bad port or bracket
    except ValueError as exc:
        raise ModelError(f"--model {shown(uri)}: {exc}; {usage}") from None
    name = u.path.strip("/")
    protocol = (parse_qs(u.query).get("protocol") or ["http"])[0]
    if u.scheme != "triton" or not host or not name or "/" in name or protocol not in ("http", "grpc"):
        raise ModelError(f"--model {shown(uri)}: {usage}")
    port = port or (8001 if protocol == "grpc" else 8000)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}", name, protocol


class TritonBackend(InputBuffer):
    name = "triton"

    def __init__(self, uri: str, timeout_s: float = 30.0, **_: object) -> None:
        self.path = RemoteModel(uri)
        self.url, self.model, self.protocol = parse_uri(uri)
        self.timeout_s = timeout_s
        self._client: Any = None
        self._local = threading.local()  # tritonclient's HTTP client (gevent) serves only the thread that made it
        self.max_batch: int | None = None
        self._clients: list[Any] = []

    @classmethod
    def from_path(cls, path, **options) -> "TritonBackend":
        backend = cls(str(path), **options)
        backend._connect()  # the manifest is needed before open: it comes from the server
        return backend

    def _connect(self) -> None:
        try:
            if self.protocol == "grpc":
                import tritonclient.grpc as client
            else:
                import tritonclient.http as client  # type: ignore[no-redef]
        except ImportError:
            raise SegrtError(f"{self.path}: a Triton model needs tritonclient: pip install -e '.[triton]'") from None
        self._mod = client
        try:
            self._client = self._new_client()
            live = self._client.is_server_live()
        except Exception as exc:  # connection refused, DNS, TLS: tritonclient's own types  # noqa: BLE001
            raise ModelError(f"{self.path}: no Triton server answers at {self.url} ({first_line(exc)}); start it "
                             "(docs/serving.md, Triton) or check the address") from None
        if not live:
            raise ModelError(f"{self.path}: the Triton server at {self.url} is not live yet; retry when it is")
        try:
            ready = self._client.is_model_ready(self.model)
        except Exception as exc:  # noqa: BLE001
            raise ModelError(f"{self.path}: {first_line(exc)}") from None
        if not ready:
            index = self._client.get_model_repository_index()
            names = [m["name"] if isinstance(m, dict) else m.name for m in
                     (index if isinstance(index, list) else index.models)]
            raise ModelError(f"{self.path}: the server has no ready model {self.model!r} (it has: "
                             f"{', '.join(names) or 'none'}); check the name or the server's log")
        config = self._client.get_model_config(self.model)
        if self.protocol == "grpc":
            from google.protobuf import json_format

            config = json_format.MessageToDict(config.config, preserving_proto_field_name=True)
        text = ((config.get("parameters") or {}).get("segrt_manifest") or {}).get("string_value")
        if not text:
            raise ModelError(f"{self.path}: the served model has no segrt manifest (parameter segrt_manifest); "
                             "serve a repository written by 'segrt export-triton'")
        self.manifest: ModelManifest = manifest_from_text(text, f"{self.path} (served config)")
        limit = int(config.get("max_batch_size") or 0)
        self.fixed_batch = None if limit else int(config["input"][0]["dims"][0])
        self.max_batch = limit or self.fixed_batch

    def _new_client(self) -> Any:
        if self.protocol == "grpc":
            return self._mod.InferenceServerClient(self.url)
        return self._mod.InferenceServerClient(self.url, connection_timeout=self.timeout_s,
                                               network_timeout=self.timeout_s)

    def _thread_client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._new_client()
            self._clients.append(client)
        return client

    def __enter__(self) -> "TritonBackend":
        if self._client is None:
            self._connect()
        return self

    def __exit__(self, *exc: object) -> None:
        for client in [self._client, *self._clients]:
            if client is not None:
                client.close()
        self._client, self._clients = None, []
        self._local = threading.local()

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """float32 (N, 3, h, w) → uint8 (N, h, w), one request."""
        if self._client is None:
            raise RuntimeError("backend is not open; use it as a context manager")
        self.check_batch(batch)
        n = batch.shape[0]
        if (self.fixed_batch and n != self.fixed_batch) or (self.max_batch and n > self.max_batch):
            raise ValueError(f"{self.path}: the served model takes batches of "
                             f"{self.fixed_batch if self.fixed_batch else f'at most {self.max_batch}'}, got {n}")
        m, client = self.manifest, self._mod
        data = np.ascontiguousarray(batch)
        inp = client.InferInput(m.input_name, list(data.shape), "FP32")
        inp.set_data_from_numpy(data)
        try:
            result = self._thread_client().infer(self.model, [inp],
                                                 outputs=[client.InferRequestedOutput(m.output_name)])
        except Exception as exc:  # noqa: BLE001  tritonclient raises InferenceServerException
            raise ModelError(f"{self.path}: the server refused the request ({first_line(exc)})") from None
        labels = result.as_numpy(m.output_name)
        return labels if labels.dtype == np.uint8 else labels.astype(np.uint8)
