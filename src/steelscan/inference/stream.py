"""Inspect a stream of frames with decode, inference and post-processing overlapping.

Two modes, one answer (the same results, in the same order):
- throughput (streams: `predict` over many frames, the line): a pool of decode threads reads
  frames ahead; the models run on the calling thread, `inspector.batch_size` frames per call;
  a post-processing pool turns each batch's model output into masks and defects (and runs the
  caller's `finish`, e.g. writing an overlay) while the models work on the next batch.
  Decoding (PIL), the models (torch, onnxruntime) and most of numpy/scipy release the GIL, so
  threads are enough to keep every core busy.
- latency (single requests, the service): one frame at a time, decode -> models ->
  post-processing on the calling thread, batch 1, nothing queued ahead.

Both modes take `IDLE` among the items (a live source with nothing new for now): everything
before it is inspected and yielded, then IDLE itself, before the stream pulls on; and a
`screen` that may refuse decoded frames before the models (the line's frame-size check).
An inspector with `inspect` only (a truth inspector, a test double) runs whole as the model
stage (`as_stream_inspector`).

Threads: the models keep the inspector's intra-op threads (`build_inspector(threads=...)`,
default every core); decoding and post-processing get one thread each by default and
time-share the cores with the models: they are a fraction of a frame's model time, and a core
left idle while the models wait costs more than the sharing (to be confirmed on an idle machine
with `steelscan benchmark`'s throughput rows and `predict --threads`)."""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Generic, Iterable, Iterator, TypeVar

import numpy as np

from ..errors import ConfigError, SteelscanError
from .cascade import InspectionResult, Inspector, ModelOutput

T = TypeVar("T")
R = TypeVar("R")
MODES = ("throughput", "latency")


class _Idle:
    def __repr__(self) -> str:
        return "IDLE"


IDLE = _Idle()   # among a stream's items: nothing new for now; run what is queued, yield it, then IDLE


class InspectOnly:
    """A stream inspector over one that has only `inspect(images, ids)` (no models/post-processing
    split): all of it runs as the model stage, `finish` hands its result on."""

    def __init__(self, inspector, batch_size: int) -> None:
        self.inspector = inspector
        self.batch_size = max(1, int(batch_size))

    def infer(self, images, image_ids) -> list:
        return list(self.inspector.inspect(images, image_ids))

    def finish(self, out):
        return out


def as_stream_inspector(inspector, batch_size: int):
    """`inspector` itself when it has the models/post-processing split (`Inspector`), else an
    InspectOnly over it with `batch_size`."""
    if callable(getattr(inspector, "infer", None)) and callable(getattr(inspector, "finish", None)) \
            and getattr(inspector, "batch_size", None):
        return inspector
    return InspectOnly(inspector, batch_size)


@dataclass
class StreamItem(Generic[T]):
    """One frame of a stream after inspection: the caller's item, its decoded image (None when
    it could not be read) and its result (`InspectionResult.failed` for an unreadable frame)."""

    item: T
    image: np.ndarray | None
    result: InspectionResult


def _decode(load: Callable[[T], np.ndarray], item: T) -> np.ndarray | SteelscanError:
    try:
        return load(item)
    except SteelscanError as e:  # unreadable frame: reported in its result, the stream goes on
        return e


def _finish(inspector: Inspector, out: ModelOutput | None, item: T, image, error: str | None,
            image_id: str, finish: Callable[[StreamItem[T]], R] | None):
    result = InspectionResult.failed(image_id, error) if out is None else inspector.finish(out)
    done = StreamItem(item, image, result)
    return finish(done) if finish is not None else done


def inspect_stream(inspector: Inspector, items: Iterable[T], load: Callable[[T], np.ndarray],
                   image_id: Callable[[T], str], *, mode: str = "throughput",
                   finish: Callable[[StreamItem[T]], R] | None = None,
                   screen: Callable[[list[tuple[T, np.ndarray]]], list[str | None]] | None = None,
                   decode_workers: int = 1, post_workers: int = 1, ahead: int = 2) -> Iterator[StreamItem[T] | R]:
    """Yield, in the order of `items`, one StreamItem per item (or `finish(StreamItem)` when
    given: it runs on a post-processing thread in throughput mode, so it may do slow per-frame
    work such as saving an overlay; it must not depend on the order it is called in).

    load(item) -> RGB uint8 (H, W, 3), raising a SteelscanError (ImageError) for an unreadable
    frame, which then gets a failed result. `screen(batch)`: called on this thread with each
    batch's decoded (item, image) pairs before the models; a string in its answer fails that
    frame with that error (not given to the models). `ahead`: batches decoded ahead of the
    models (and post-processed behind them) in throughput mode besides the next one (0: only
    the next batch is decoded while the models work: for a live source, where a frame taken
    early only waits and grows old). IDLE among the items: see the
    module's docstring."""
    if mode not in MODES:
        raise ConfigError(f"unknown mode {mode!r} (choose from {', '.join(MODES)})", field="mode")
    if mode == "latency":
        yield from _latency(inspector, items, load, image_id, finish, screen)
        return
    batch_size, ahead = inspector.batch_size, max(0, ahead)
    with ThreadPoolExecutor(max(1, decode_workers), thread_name_prefix="decode") as decode_pool, \
            ThreadPoolExecutor(max(1, post_workers), thread_name_prefix="postprocess") as post_pool:
        source = iter(items)
        decoding: deque[tuple[T, Future | None]] = deque()
        finishing: deque[Future] = deque()
        idle_queued = False

        def refill() -> None:
            nonlocal idle_queued
            while not idle_queued and len(decoding) < (ahead + 1) * batch_size:
                try:
                    item = next(source)
                except StopIteration:
                    return
                if item is IDLE:   # pull nothing more until what came before it is out
                    decoding.append((item, None))
                    idle_queued = True
                    return
                decoding.append((item, decode_pool.submit(_decode, load, item)))

        try:
            refill()
            while decoding:
                if decoding[0][0] is IDLE:
                    decoding.popleft()
                    idle_queued = False
                    while finishing:
                        yield finishing.popleft().result()
                    yield IDLE
                    refill()
                    continue
                batch = []
                while decoding and len(batch) < batch_size and decoding[0][0] is not IDLE:
                    batch.append(decoding.popleft())
                refill()
                decoded = _screened([(item, fut.result()) for item, fut in batch], screen)
                good = [(item, im) for item, im in decoded if isinstance(im, np.ndarray)]
                outputs = iter(inspector.infer([im for _, im in good], [image_id(item) for item, _ in good])
                               if good else [])
                for item, im in decoded:
                    ok = isinstance(im, np.ndarray)
                    finishing.append(post_pool.submit(_finish, inspector, next(outputs) if ok else None, item,
                                                      im if ok else None, None if ok else str(im), image_id(item),
                                                      finish))
                while finishing and (finishing[0].done() or len(finishing) > max(1, ahead) * batch_size):
                    yield finishing.popleft().result()
            while finishing:
                yield finishing.popleft().result()
        finally:  # an early close or an error: drop what is queued, let running work end
            for _, fut in decoding:
                if fut is not None:
                    fut.cancel()
            for fut in finishing:
                fut.cancel()


def _screened(decoded: list, screen) -> list:
    """decoded (item, image or error) pairs with the frames `screen` refuses turned into errors."""
    if screen is None:
        return decoded
    good = [i for i, (_, im) in enumerate(decoded) if isinstance(im, np.ndarray)]
    if not good:
        return decoded
    errors = screen([decoded[i] for i in good])
    out = list(decoded)
    for i, error in zip(good, errors):
        if error is not None:
            out[i] = (decoded[i][0], error)
    return out


def _latency(inspector: Inspector, items: Iterable[T], load, image_id, finish, screen=None) -> Iterator:
    """One frame at a time on this thread: decode, models (batch 1), post-processing."""
    for item in items:
        if item is IDLE:
            yield IDLE
            continue
        ((_, im),) = _screened([(item, _decode(load, item))], screen)
        ok = isinstance(im, np.ndarray)
        out = inspector.infer([im], [image_id(item)])[0] if ok else None
        yield _finish(inspector, out, item, im if ok else None, None if ok else str(im), image_id(item), finish)
