"""The serving parts that need no server: the model store, the batcher, the prefix, redaction, error mapping."""

from __future__ import annotations

import asyncio
import hashlib
import json

import pytest

from synapse_runtime.serve.asgi import classify
from synapse_runtime.serve.batching import Batcher
from synapse_runtime.serve.models import ModelLoadFailed, ModelNotFound, ModelStore, ModelTokenError, ref_from_id
from synapse_runtime.serve.options import resolve, route_prefix
from synapse_runtime.serve.redact import ServeRedactor


def test_model_store_single_flight_lru_and_failures_not_kept() -> None:
    loads: list[str] = []
    fail = {"3"}

    async def load(ref):  # type: ignore[no-untyped-def]
        loads.append(ref.model_id)
        await asyncio.sleep(0.05)
        if ref.model_id in fail:
            raise OSError("disk on fire")
        return f"model-{ref.model_id}"

    async def main() -> None:
        store = ModelStore(load, capacity=2)
        got = await asyncio.gather(*(store.get(ref_from_id(1)) for _ in range(10)))
        assert got == ["model-1"] * 10 and loads == ["1"]
        await store.get(ref_from_id(2))
        await store.get(ref_from_id(1))  # 1 is now the most recent
        await store.get(ref_from_id(4))  # evicts 2
        assert len(store) == 2
        await store.get(ref_from_id(2))
        assert loads == ["1", "2", "4", "2"]
        for _ in range(2):
            with pytest.raises(ModelLoadFailed) as err:
                await store.get(ref_from_id(3))
            assert err.value.status == 502 and err.value.error_type == "OSError"
        assert loads.count("3") == 2  # a failed load is tried again next time

    asyncio.run(main())


def test_batcher_gathers_calls_into_batches_up_to_the_size() -> None:
    sizes: list[int] = []

    async def infer_batch(items: list[int]) -> list[int]:
        sizes.append(len(items))
        return [i * 10 for i in items]

    async def main() -> list[int]:
        batcher = Batcher(infer_batch, max_batch_size=4, wait_s=0.05)
        return list(await asyncio.gather(*(batcher(i) for i in range(10))))

    assert asyncio.run(main()) == [i * 10 for i in range(10)]
    assert sizes == [4, 4, 2]


def test_batcher_failure_fails_the_whole_batch_only() -> None:
    async def infer_batch(items: list[int]) -> list[int]:
        if 3 in items:
            raise ValueError("bad item")
        return items

    async def main() -> list[object]:
        batcher = Batcher(infer_batch, max_batch_size=2, wait_s=0.01)
        return list(await asyncio.gather(*(batcher(i) for i in range(4)), return_exceptions=True))

    out = asyncio.run(main())
    assert out[:2] == [0, 1] and all(isinstance(x, ValueError) for x in out[2:])


def test_route_prefix_is_upstreams() -> None:
    assert route_prefix("code", "1.0.0", {}) == "/" + hashlib.md5(b"code@1.0.0").hexdigest()
    assert route_prefix("code", "1.0.0", {"SYNAPSE_PLUGIN_RELEASE_CODE": "x@2"}) == "/" + hashlib.md5(b"x@2").hexdigest()
    assert route_prefix("code", "1.0.0", {"SYNAPSE_PLUGIN_RELEASE_CHECKSUM": "abc"}) == "/abc"
    assert route_prefix("c", "1", {"SYNAPSE_PLUGIN_RELEASE_CHECKSUM": "abc", "SYNAPSE_SERVE_ROUTE_PREFIX": "p/q/"}) == "/p/q"
    assert route_prefix("c", "1", {"SYNAPSE_SERVE_ROUTE_PREFIX": "/"}) == ""


@pytest.mark.parametrize("options,match", [
    ({"batch": {"max_batch_size": 0}}, "max_batch_size"),
    ({"batch": {"batch_wait_timeout_s": -1}}, "batch_wait_timeout_s"),
    ({"batch": 5}, "batch"),
    ({"max_ongoing_requests": "many"}, "max_ongoing_requests"),
])
def test_bad_serve_options_are_exit_2(options: dict, match: str) -> None:
    from synapse_runtime.errors import ExitCode, ValidationError

    with pytest.raises(ValidationError, match=match) as err:
        resolve(options, {}, code="c", version="1")
    assert err.value.exit_code == ExitCode.INVALID_INPUT


def test_serve_options_honoured_and_ignored() -> None:
    opts = resolve({"batch": {"max_batch_size": 3}, "max_ongoing_requests": 7, "num_replicas": 2,
                    "health_check_period_s": 5}, {"SYNAPSE_SERVE_MAX_MODELS": "9"}, code="c", version="1")
    assert (opts.batch.max_batch_size, opts.batch.batch_wait_timeout_s) == (3, 0.1)  # type: ignore[union-attr]
    assert (opts.max_ongoing, opts.max_models, opts.port) == (7, 9, 8100)
    assert opts.ignored == ("health_check_period_s", "num_replicas")


def test_redactor_masks_model_tokens_in_json_and_text() -> None:
    jwt_like = "eyJhbGciOiJIUzI1NiJ9.eyJtb2RlbCI6IjEifQ.c2lnbmF0dXJl"
    r = ServeRedactor(["hunter2-secret"])
    line = json.dumps({"text": f"get_model: model_id={jwt_like!r} key hunter2-secret"})
    out = r.json(line)
    assert jwt_like not in out and "hunter2-secret" not in out and json.loads(out)["text"].count("***") == 2
    assert r(f"token {jwt_like}") == "token ***"
    empty = ServeRedactor()
    empty.add([])
    assert empty.active and jwt_like not in empty.json(json.dumps([jwt_like]))


def test_classify_sees_through_upstreams_model_load_error() -> None:
    class ModelLoadError(Exception):  # upstream's wrapper in get_model
        pass

    try:
        try:
            raise ModelNotFound("model 9 not found")
        except ModelNotFound as inner:
            raise ModelLoadError("Failed to load model") from inner
    except ModelLoadError as outer:
        assert classify(outer)[:2] == (404, "ModelNotFound")
    assert classify(ModelTokenError("bad"))[0] == 401
    assert classify(KeyError("x"))[:2] == (500, "KeyError")
