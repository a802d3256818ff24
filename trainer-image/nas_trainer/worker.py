"""`nas-worker`: a warm trial pod (spec.trials.mode WarmPool) that trains successive Trials.

A fresh trial process spends seconds importing torch and making its first CUDA context
before it trains anything; a worker pays that once. The operator writes each assignment
into this pod's annotations (contract 8, ``nas_contracts.warm_pool``); the worker
watches its own pod, trains the assignment in process with nas-train's code path
(``train_cli.evaluate``) and answers with the result JSON (contract 3). A pack of
assignments (spec.trials.packing) has its image children of one trainer config trained
together (``worker_packs``, ``training.packing.train_packed``) and answered at once;
its other Trials, and any whose packed training failed, one after another, each
answered as it finishes. The
operator alone writes Trial status; the worker's ServiceAccount may only read and patch
its own pod.

Exit: SIGTERM ends it at once (the operator requeues the Trial); a CUDA error that may
have poisoned the context is reported as retryable, then the worker exits 1 so that the
operator replaces the pod.

Env: ``NAS_POD_NAME``, ``NAS_NAMESPACE`` (fieldRefs).
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any

from nas_contracts.cluster import ENV_NAMESPACE, ENV_POD_NAME
from nas_contracts.result import EXIT_OK, EXIT_RETRYABLE, TERMINATION_LIMIT
from nas_contracts.warm_pool import (ASSIGNMENT_ANNOTATION, RESULT_ANNOTATION, answer,
                                    answer_pack, answers_in, pending_assignment,
                                    pending_assignments,
                                    read_annotation, run_key)

from . import worker_packs
from .train_cli import Evaluation, evaluate

WATCH_SECONDS = 300
CUDA_WORDS = ("CUDA", "CUBLAS", "CUDNN", "cuDNN", "device-side assert", "NCCL")


def result_patch(assignment: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    """The merge patch answering ``assignment`` with the result JSON ``doc`` (< 4 KiB)."""
    from .training.result import compact

    result = compact(doc, TERMINATION_LIMIT - 512)  # 512: room for the envelope
    return {"metadata": {"annotations": {RESULT_ANNOTATION: answer(assignment, result)}}}


def pack_result_patch(annotations: dict[str, str] | None, assignment: dict[str, Any],
                      doc: dict[str, Any]) -> dict[str, Any]:
    """The merge patch adding the answer to one Trial of a pack to the answers already
    given (each finished Trial is answered at once: a worker deleted mid-pack loses only
    the Trials it had not finished). A single assignment is answered as today."""
    return pack_results_patch(annotations, [(assignment, doc)])


def pack_results_patch(annotations: dict[str, str] | None,
                       finished: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    """The merge patch adding the answers to several Trials of a pack (assignment, result
    JSON), trained together and finished together, to the answers already given."""
    from .training.result import compact

    held = read_annotation(annotations, ASSIGNMENT_ANNOTATION) or {}
    if "pack" not in held and len(finished) == 1:
        return result_patch(*finished[0])
    keys = {run_key(a) for a, _ in finished}
    earlier = [(a, json.dumps(a.get("result"), sort_keys=True))
               for a in answers_in(annotations).values() if run_key(a) not in keys]
    new = [(a, compact(doc, TERMINATION_LIMIT - 512)) for a, doc in finished]
    value = answer_pack([*earlier, *new])
    return {"metadata": {"annotations": {RESULT_ANNOTATION: value}}}


def may_have_poisoned_cuda(error: BaseException | None) -> bool:
    """A retryable error after which this process's CUDA context cannot be trusted."""
    if error is None or "torch" not in sys.modules:
        return False
    import torch

    if not torch.cuda.is_initialized():
        return False
    return type(error).__name__ == "AcceleratorError" or any(w in str(error) for w in CUDA_WORDS)


def train(assignment: dict[str, Any], data_cache: dict[Any, Any]) -> Evaluation:
    """nas-train's evaluation of one assignment, in this process."""
    started = time.perf_counter()
    config = assignment.get("config")
    return evaluate(assignment.get("architecture"),
                    lambda: dict(config) if isinstance(config, dict) else {},
                    assignment.get("outputDir") or None, started,
                    data_cache=data_cache, prog="nas-worker")


def answer_one(core: Any, pod: str, namespace: str, annotations: dict[str, str],
               assignment: dict[str, Any], data_cache: dict[Any, Any],
               retrying: Any) -> tuple[int | None, Any]:
    """Train one assignment and answer it; (1 when this process must exit, the pod as
    patched)."""
    had_torch = "torch" in sys.modules
    evaluation = train(assignment, data_cache)
    if not had_torch and "torch" in sys.modules:
        log("imported torch")
    # Through API blips: a result lost here would cost a retry and the training.
    patch = pack_result_patch(annotations, assignment, evaluation.doc)
    patched = retrying(lambda: core.patch_namespaced_pod(pod, namespace, patch),
                       f"answering trial {assignment.get('trial')}", give_up_after_s=600)
    outcome = (f"reward {evaluation.doc.get('reward')}" if evaluation.code == EXIT_OK
               else f"error {evaluation.doc.get('error')}")
    log(f"trial {assignment.get('trial')} attempt {assignment.get('attempt')}: {outcome}")
    if evaluation.code == EXIT_RETRYABLE and may_have_poisoned_cuda(evaluation.error):
        log("the CUDA context may be broken: exiting so that the pod is replaced")
        return 1, patched
    return None, patched


def answer_together(core: Any, pod: str, namespace: str, annotations: dict[str, str],
                    group: list[dict[str, Any]], data_cache: dict[Any, Any],
                    retrying: Any) -> tuple[int | None, Any]:
    """Train a group of a pack (image children, one config) together, in chunks that fit
    the device, and answer each chunk's Trials in one patch; a chunk whose packed
    training fails is trained one Trial after another (each still answered on its own).
    (1 when this process must exit, the annotations as last patched.)"""
    from .training.result import error_json

    had_torch = "torch" in sys.modules
    try:
        size = worker_packs.pack_size(group, data_cache)
    except Exception as err:  # noqa: BLE001 - sizing failed: the safe path is one by one
        log(f"could not size a pack of {len(group)} ({type(err).__name__}: {err}); "
            "training its trials one after another")
        size = 1
    if not had_torch and "torch" in sys.modules:
        log("imported torch")
    for chunk in worker_packs.chunks(group, size):
        evaluations, error = None, None
        if len(chunk) > 1:
            try:
                evaluations = worker_packs.train_together(chunk, data_cache, log)
            except Exception as err:  # noqa: BLE001 - each Trial then answers for itself
                error = err
                log(f"training {len(chunk)} trials together failed ({type(err).__name__}: "
                    f"{err}); training them one after another")
        if error is not None and may_have_poisoned_cuda(error):
            doc = error_json(f"{type(error).__name__}: {error}", False)
            patch = pack_results_patch(annotations, [(a, doc) for a in chunk])
            retrying(lambda: core.patch_namespaced_pod(pod, namespace, patch),
                     "answering a pack", give_up_after_s=600)
            log("the CUDA context may be broken: exiting so that the pod is replaced")
            return 1, annotations
        if evaluations is None:  # a chunk of one, or a failed pack: the single-run path
            for assignment in chunk:
                code, patched = answer_one(core, pod, namespace, annotations, assignment,
                                           data_cache, retrying)
                annotations = dict(patched.metadata.annotations or {})
                if code == 1:
                    return 1, annotations
            continue
        finished = [(a, e.doc) for a, e in zip(chunk, evaluations)]
        patch = pack_results_patch(annotations, finished)
        patched = retrying(lambda: core.patch_namespaced_pod(pod, namespace, patch),
                           f"answering {len(chunk)} trials trained together",
                           give_up_after_s=600)
        annotations = dict(patched.metadata.annotations or {})
        for assignment, evaluation in zip(chunk, evaluations):
            log(f"trial {assignment.get('trial')} attempt {assignment.get('attempt')}: reward "
                f"{evaluation.doc.get('reward')} (trained in a pack of {len(chunk)})")
    return None, annotations


def log(message: str) -> None:
    print(f"nas-worker: pid {os.getpid()}: {message}", file=sys.stderr, flush=True)


def serve(pod: str, namespace: str) -> int:
    """Watch this pod and answer its assignments until the pod is deleted."""
    from kubernetes import client, config, watch
    from kubernetes.client.rest import ApiException

    from .controller.retry import is_transient, retrying

    config.load_incluster_config()
    core = client.CoreV1Api()
    answered: set[tuple[Any, Any, Any]] = set()
    data_cache: dict[Any, Any] = {}
    log(f"watching pod {namespace}/{pod}")
    while True:
        stream = watch.Watch().stream(core.list_namespaced_pod, namespace,
                                      field_selector=f"metadata.name={pod}",
                                      timeout_seconds=WATCH_SECONDS)
        try:
            for event in stream:
                if event["type"] == "DELETED":
                    return 0
                annotations = dict(event["object"].metadata.annotations or {})
                # A pack's image children of one config train together; its other Trials
                # one after another, each answered when done: one failing answers only
                # for itself and the next one still runs.
                fresh = [a for a in pending_assignments(annotations)
                         if run_key(a) not in answered]
                for group in worker_packs.plan(fresh):
                    if len(group) > 1:
                        code, annotations = answer_together(core, pod, namespace, annotations,
                                                            group, data_cache, retrying)
                    else:
                        code, answered_pod = answer_one(core, pod, namespace, annotations,
                                                        group[0], data_cache, retrying)
                        annotations = dict(answered_pod.metadata.annotations or {})
                    answered.update(run_key(a) for a in group)
                    if code == 1:
                        return 1
        except ApiException as err:
            if err.status == 404:
                return 0
            if err.status != 410 and not is_transient(err):  # 410: too old; list again
                raise
        except Exception as err:  # a dropped connection: watch again, after a pause
            if not is_transient(err):
                raise
            log(f"watch interrupted ({err}); watching again")
            time.sleep(1.0)


def _exit_now(signum: int, _frame: Any) -> None:
    # The pod is being deleted: the running trial is abandoned (the operator requeues it).
    os._exit(128 + signum)


def main() -> int:
    signal.signal(signal.SIGTERM, _exit_now)
    signal.signal(signal.SIGINT, _exit_now)
    pod, namespace = os.environ.get(ENV_POD_NAME), os.environ.get(ENV_NAMESPACE)
    if not pod or not namespace:
        print("nas-worker: NAS_POD_NAME and NAS_NAMESPACE must be set (fieldRefs)",
              file=sys.stderr)
        return 2
    return serve(pod, namespace)


if __name__ == "__main__":
    sys.exit(main())
