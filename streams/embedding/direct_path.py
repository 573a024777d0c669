"""The direct embedding path: tokenise many texts at once with the model's
fast tokenizer, cut them into length buckets padded only to their own longest
text, and run Transformer -> mean pooling -> normalise per bucket; on CUDA with
fp16, pinned buffers, non-blocking copies and a producer thread that packs the
next buckets while the GPU runs the current one. `streams/embedding/model.py` decides
when to use it (and checks it against `SentenceTransformer.encode`)."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")

# Sequences per forward pass (the token budget is this times max_seq_length, so
# buckets of short texts hold more of them). Measured: see docs/PERFORMANCE.md.
CUDA_FORWARD_BATCH = 512
CPU_FORWARD_BATCH = 64
# Texts the CUDA producer tokenises (and sorts into buckets) per step.
_CUDA_CHUNK_TEXTS = 2048
# Buckets packed ahead of the GPU.
_PREFETCH = 4


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


class DirectPath:
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
